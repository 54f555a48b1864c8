"""Driving browser sign-in without a browser: the embedded login form, and a live app server."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI

from botserver.services import passwords


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at a test-only cost: the production cost takes ~0.35 s a hash here.

    Import this fixture into a test module to apply it there.
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", cheap)


_FORM_ACTION = re.compile(r'<form[^>]* method="post" action="([^"]+)"')
_SEALED_REQUEST = re.compile(r'name="request" value="([^"]*)"')


def login_form(page: httpx.Response) -> tuple[str, str]:
    """The embedded login form's action URL and its sealed request reference."""
    action = _FORM_ACTION.search(page.text)
    sealed = _SEALED_REQUEST.search(page.text)
    assert action and sealed, f"no login form in {page.status_code} answer"
    return str(page.url.join(html.unescape(action.group(1)))), html.unescape(sealed.group(1))


async def submit_login(
    http: httpx.AsyncClient, authorize_url: str, username: str, password: str
) -> httpx.Response:
    """Open the embedded authorize page and post the credentials; answers the form's reply."""
    page = await http.get(authorize_url)
    assert page.status_code == 200, page.text
    action, sealed = login_form(page)
    return await http.post(
        action, data={"request": sealed, "username": username, "password": password}
    )


async def start_sign_in(http: httpx.AsyncClient, return_to: str | None = None) -> str:
    """GET /auth/login; answers the directory URL it redirects to."""
    params = {"return_to": return_to} if return_to is not None else None
    response = await http.get("/auth/login", params=params)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def callback_url(
    http: httpx.AsyncClient, username: str, password: str, return_to: str | None = None
) -> str:
    """Run sign-in against the embedded directory up to (not including) the callback."""
    authorize = await start_sign_in(http, return_to)
    answer = await submit_login(http, authorize, username, password)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


async def sign_in(
    http: httpx.AsyncClient, username: str, password: str, return_to: str | None = None
) -> httpx.Response:
    """The whole flow against the embedded directory; answers the callback's response."""
    return await http.get(await callback_url(http, username, password, return_to))


@asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    """Serve an already started app with uvicorn on 127.0.0.1:port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
