"""PostgreSQL goes away and comes back: fast 503 envelopes, then normal answers, no restart."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from botserver.app import create_app
from botserver.config import Settings
from tests.api.wsclient import Socket
from tests.conftest import start_live_server, started
from tests.scale.conftest import open_session
from tests.support.services import PostgresServer

BOTS = Path(__file__).resolve().parents[1] / "bots"


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of its own: this module stops it, and nobody else may notice."""
    server = started(PostgresServer(), "PostgreSQL")
    yield server
    server.destroy()


@pytest.fixture
async def served(own_postgres: PostgresServer) -> AsyncIterator[tuple[str, str, PostgresServer]]:
    """A live app on the dedicated server: its URL and a user's token."""
    url = own_postgres.create_database(f"outage_{secrets.token_hex(4)}")
    settings = Settings(_env_file=None, database_url=url, bots_dir=BOTS)  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.services
        user = await services.users.create("olga")
        token = (await services.login_sessions.issue(user.id)).token
        server, task, port = await start_live_server(app)
        try:
            yield f"http://127.0.0.1:{port}", token, own_postgres
        finally:
            own_postgres.start()
            server.should_exit = True
            await task


@pytest.mark.parametrize("shutdown", ["fast", "immediate"])
async def test_requests_fail_fast_with_503_then_recover_by_themselves(
    served: tuple[str, str, PostgresServer], shutdown: str
) -> None:
    url, token, postgres = served
    headers = {"Authorization": f"Bearer {token}"}
    session_id = await open_session(url, headers)
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client,
        await Socket.open(url.replace("http", "ws"), token) as ws,
    ):
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        assert (await ws.recv())["seq"] == 1
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"  # the resume is over

        if shutdown == "immediate":
            # The test cluster runs with synchronous_commit=off; flush what it acknowledged.
            connection = await asyncpg.connect(postgres.dsn)
            await connection.execute("CHECKPOINT")
            await connection.close()
        postgres.stop(mode=shutdown)

        for method, path, body in [
            ("GET", "/api/bots", None),  # authentication itself needs the database
            ("POST", f"/api/session/{session_id}/messages", {"content": "lost?"}),
            ("GET", f"/api/session/{session_id}/messages", None),
        ]:
            started = time.monotonic()
            response = await client.request(method, path, json=body)
            assert time.monotonic() - started < 5
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert (await client.get("/health")).status_code == 503

        # An open socket is told, and stays open.
        await ws.send({"type": "message", "session_id": session_id, "content": "anyone?"})
        error = await ws.recv(timeout=6)
        assert error["type"] == "error"
        assert error["error"]["code"] == "SERVICE_UNAVAILABLE"

        postgres.start()

        response = await client.post(
            f"/api/session/{session_id}/messages", json={"content": "back"}
        )
        assert response.status_code == 200, response.text
        assert [r["content"] for r in response.json()["replies"]] == ["You said: back"]
        frames = await ws.recv_until(lambda f: f.get("content") == "You said: back")
        assert [f["seq"] for f in frames] == [2, 3]
        assert (await client.get("/health")).status_code == 200
