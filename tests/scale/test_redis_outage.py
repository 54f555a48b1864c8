"""Redis goes away and comes back under two instances: nothing stored is lost, nobody crashes."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from botserver.app import create_app
from botserver.config import Settings
from botserver.services.container import Services
from tests.api.wsclient import Socket
from tests.conftest import start_live_server, started
from tests.scale.conftest import open_session
from tests.support.services import PostgresServer, RedisServer

BOTS = Path(__file__).resolve().parents[1] / "bots"


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A server of its own: this module stops it, and nobody else may notice."""
    server = started(RedisServer(), "Redis")
    yield server
    server.destroy()


@dataclass
class Node:
    app: FastAPI
    port: int
    admin_token: str = ""

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@pytest.fixture
async def pair(
    postgres: PostgresServer, own_redis: RedisServer
) -> AsyncIterator[tuple[Node, Node, str]]:
    """Two instances (in this process, each with its own services) and a user's token."""
    database_url = postgres.create_database(f"redis_outage_{secrets.token_hex(4)}")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, redis_url=own_redis.url, bots_dir=BOTS
    )
    nodes: list[Node] = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            server, task, port = await start_live_server(app)
            stack.push_async_callback(stop_server, server, task)
            nodes.append(Node(app, port))
        stack.callback(own_redis.start)  # runs first: the apps close with Redis up
        services = nodes[0].services
        user = await services.users.create("rita")
        token = (await services.login_sessions.issue(user.id)).token
        boss = await services.users.create("boss", roles=["admin"])
        nodes[0].admin_token = (await services.login_sessions.issue(boss.id)).token
        yield nodes[0], nodes[1], token


async def stop_server(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    await task


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for a condition")


async def say(node: Node, token: str, session_id: str, content: str) -> list[str]:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        response = await client.post(
            f"/api/session/{session_id}/messages",
            json={"content": content},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    return [reply["content"] for reply in response.json()["replies"]]


async def redis_check(node: Node) -> dict[str, Any]:
    """The Redis line of the admin status check."""
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        response = await client.get(
            "/api/admin/system/status",
            headers={"Authorization": f"Bearer {node.admin_token}"},
        )
    assert response.status_code == 200, response.text
    check: dict[str, Any] = response.json()["checks"]["redis"]
    return check


def reply_to(content: str) -> Any:
    return lambda f: f["type"] == "message" and f["content"] == f"You said: {content}"


async def test_redis_down_then_back(pair: tuple[Node, Node, str], own_redis: RedisServer) -> None:
    a, b, token = pair
    headers = {"Authorization": f"Bearer {token}"}
    session_id = await open_session(a.url, headers)
    async with await Socket.open(a.ws_url, token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        assert (await ws.recv())["seq"] == 1
        await say(b, token, session_id, "while up")
        await ws.recv_until(reply_to("while up"))
        assert a.services.redis_healthy and b.services.redis_healthy
        assert (await redis_check(a))["status"] == "ok"

        own_redis.stop(save=False)
        await wait_for(lambda: not a.services.redis_healthy and not b.services.redis_healthy)
        assert (await redis_check(a))["status"] != "ok"  # the admin sees the outage

        # Each instance keeps answering and storing; A's own sockets still hear A's turns.
        assert await say(b, token, session_id, "via b, unseen") == ["You said: via b, unseen"]
        assert await say(a, token, session_id, "via a") == ["You said: via a"]
        frames = await ws.recv_until(reply_to("via a"))
        assert [f["content"] for f in frames] == ["via a", "You said: via a"]
        assert frames[0]["seq"] == 6  # seq 4 and 5 were stored on B and missed here

        # The gap is visible, and resume fills it from the database.
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 3})
        assert [(await ws.recv())["content"] for _ in range(4)] == [
            "via b, unseen",
            "You said: via b, unseen",
            "via a",
            "You said: via a",
        ]

        own_redis.start()
        await wait_for(lambda: a.services.redis_healthy and b.services.redis_healthy)

        # Delivery between instances is back without restarting anything.
        assert (await redis_check(a)) == {"status": "ok", "latency_ms": ANY, "events": "flowing"}
        await say(b, token, session_id, "back")
        frames = await ws.recv_until(reply_to("back"))
        assert [f["seq"] for f in frames] == [8, 9]
        for node in (a, b):
            async with httpx.AsyncClient(base_url=node.url) as client:
                assert (await client.get("/health")).status_code == 200
