"""A real SCIM 2.0 server (scim2-server, in-memory) on a free loopback port, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import load_default_provider

from tests.support.services import LOOPBACK

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadedServer(WSGIServer):
    daemon_threads = True


@contextmanager
def scim_server(token: str) -> Iterator[str]:
    """Serve SCIM on 127.0.0.1; yields the base URL (…/v2). Requests need `Bearer token`."""
    app = BearerTokenApplication(InMemoryStorage(), load_default_provider(), bearer_tokens=[token])
    server = make_server(
        LOOPBACK, 0, app, server_class=_ThreadedServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}/v2"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def add_user(base_url: str, token: str, user: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/Users",
        json={"schemas": [USER_SCHEMA], **user},
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    response.raise_for_status()
    return dict(response.json())


def get_user(base_url: str, token: str, user_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{base_url}/Users/{user_id}", headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    return dict(response.json())
