"""A server restart between two messages loses nothing, and a waiting HEAR resumes."""

from __future__ import annotations

from pathlib import Path

import httpx

from botserver.app import create_app
from botserver.config import Settings
from tests.api.wsclient import Socket
from tests.conftest import start_live_server

BOTS = Path(__file__).resolve().parent.parent / "bots"


async def test_a_restart_between_two_messages_loses_nothing(database_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, bots_dir=BOTS, admin_password="x" * 12
    )

    first = create_app(settings)
    async with first.router.lifespan_context(first):
        services = first.state.services
        user = await services.users.create("ann")
        token = (await services.login_sessions.issue(user.id)).token
        headers = {"Authorization": f"Bearer {token}"}
        server, task, port = await start_live_server(first)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            bots = (await client.get("/api/bots", headers=headers)).json()["bots"]
            survey = next(b["id"] for b in bots if b["name"] == "survey")
            created = await client.post(
                "/api/session/create", json={"bot_id": survey}, headers=headers
            )
            session_id = created.json()["session_id"]
            async with await Socket.open(f"ws://127.0.0.1:{port}", token) as ws:
                await ws.send({"type": "message", "session_id": session_id, "content": "Ann"})
                frames = await ws.recv_until(lambda f: f["type"] == "message")
                assert frames[-1]["content"] == "How old are you, Ann?"
        server.should_exit = True
        await task

    # A new process on the same database: history intact, dialog waiting at HEAR age.
    second = create_app(settings)
    async with second.router.lifespan_context(second):
        server, task, port = await start_live_server(second)
        async with await Socket.open(f"ws://127.0.0.1:{port}", token) as ws:
            await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
            replay = [await ws.recv() for _ in range(3)]
            assert [(f["seq"], f["content"]) for f in replay] == [
                (1, "What is your name?"),
                (2, "Ann"),
                (3, "How old are you, Ann?"),
            ]
            await ws.send({"type": "message", "session_id": session_id, "content": "forty"})
            frames = await ws.recv_until(lambda f: f["type"] == "message")
            assert "number" in frames[-1]["content"].lower()  # a polite retry, same HEAR
            await ws.send({"type": "message", "session_id": session_id, "content": "42"})
            frames = await ws.recv_until(lambda f: f["type"] == "message")
            assert frames[-1]["content"] == "Ann is 42 years old."
            assert frames[-1]["seq"] == 7
        server.should_exit = True
        await task
