"""Every route but /health and the sign-in steps refuses an anonymous caller with 401.

The walk reads the app's own OpenAPI document, so routes added later are
covered without touching this file; routes hidden from the document must be
on the short list below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from starlette.routing import BaseRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import LiveServer
from tests.support.signin import cheap_password_hashing  # noqa: F401 - autouse fixture

PUBLIC = {("GET", "/health"), ("GET", "/auth/login"), ("GET", "/auth/callback")}
# Not in the OpenAPI document on purpose: the API's own description, and the embedded
# OpenID provider (its discovery document describes it; it is the sign-in itself), and
# the chat page, which is public and finds out by itself whether its visitor is signed in.
HIDDEN_PREFIXES = ("/docs", "/redoc", "/openapi.json", "/directory/", "/static/")
HIDDEN_PAGES = {"/"}


def every_route(app: FastAPI) -> Iterator[tuple[str, bool, BaseRoute]]:
    """(path, in the OpenAPI document, route) for every route, through included routers."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            yield getattr(route, "path", ""), getattr(route, "include_in_schema", True), route
            continue
        for context in contexts():
            original = context.original_route
            path = context.path or getattr(original, "path", "")
            yield path, getattr(context, "include_in_schema", True), original


def openapi_operations(app: FastAPI) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


async def test_every_documented_endpoint_requires_authentication(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    operations = openapi_operations(app)
    assert set(operations) >= PUBLIC
    checked = 0

    for method, path in operations:
        if (method, path) in PUBLIC:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        body = json.dumps({}) if method in {"POST", "PUT", "PATCH"} else None
        response = await client.request(
            method, url, content=body, headers={"Content-Type": "application/json"}
        )

        assert response.status_code == 401, f"{method} {path} answered {response.status_code}"
        assert response.json()["error"]["code"] == "UNAUTHORIZED", f"{method} {path}"
        checked += 1
    assert checked >= 4


async def test_bogus_token_and_cookie_are_refused_like_none(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for method, path in openapi_operations(app):
        if (method, path) in PUBLIC:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        for headers in (
            {"Authorization": "Bearer bst_not-a-token"},
            {"Cookie": "botserver_session=bst_not-a-token"},
        ):
            response = await client.request(method, url, headers=headers)
            assert response.status_code == 401, f"{method} {path} with {list(headers)}"


def test_routes_hidden_from_openapi_are_known(app: FastAPI) -> None:
    hidden = [
        path
        for path, documented, route in every_route(app)
        if not documented and not isinstance(route, APIWebSocketRoute)
    ]
    assert "/directory/token" in hidden
    for path in hidden:
        assert path in HIDDEN_PAGES or path.startswith(HIDDEN_PREFIXES), f"{path} is hidden"


async def test_websocket_refuses_anonymous_sockets(app: FastAPI, live_server: LiveServer) -> None:
    sockets = [path for path, _, route in every_route(app) if isinstance(route, APIWebSocketRoute)]
    assert sockets == ["/ws"]
    for path in sockets:
        async with connect(f"{live_server.ws_url}{path}") as socket:
            await socket.send(json.dumps({"type": "ping"}))
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
