"""The operator commands, end to end, as separate processes against a real database."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from botserver.app import create_app
from botserver.config import Settings
from tests.conftest import start_live_server
from tests.support.services import find_free_port

TEST_BOTS = Path(__file__).parent / "bots"


def botserver(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botserver", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_commands_end_to_end(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "BOTSERVER_DATABASE_URL": database_url, "BOTSERVER_ENV": "development"}
    env.pop("BOTSERVER_ADMIN_PASSWORD", None)

    migrated = botserver("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "up to date" in migrated.stdout

    created = botserver(
        "users",
        "create",
        "carol",
        "--email",
        "carol@example.com",
        "--password",
        "pw-123456",
        env=env,
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    duplicate = botserver("users", "create", "carol", env=env, cwd=tmp_path)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    assert botserver("users", "set-role", "carol", "admin", env=env, cwd=tmp_path).returncode == 0
    bad_role = botserver("users", "set-role", "carol", "overlord", env=env, cwd=tmp_path)
    assert bad_role.returncode == 1 and "Unknown role" in bad_role.stderr

    listed = botserver("users", "list", env=env, cwd=tmp_path)
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert ["carol", "carol@example.com", "admin"] in [row[1:] for row in rows]

    issued = botserver("tokens", "issue", "carol", env=env, cwd=tmp_path)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert len(issued.stdout.splitlines()) == 1 and len(token) >= 43

    # The token works as a bearer token against the server on the same database.
    settings = Settings(_env_file=None, database_url=database_url, bots_dir=tmp_path)  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            auth = {"Authorization": f"Bearer {token}"}
            response = await client.get("/auth/validate", headers=auth)
            assert response.status_code == 200
            assert response.json()["valid"] is True

            revoked = botserver("tokens", "revoke", token, env=env, cwd=tmp_path)
            assert revoked.returncode == 0, revoked.stderr
            response = await client.get("/auth/validate", headers=auth)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "UNAUTHORIZED"

    again = botserver("tokens", "revoke", token, env=env, cwd=tmp_path)
    assert again.returncode == 1

    bots = botserver("bots", "list", env=env, cwd=tmp_path)
    assert bots.returncode == 0, bots.stderr

    # `bots reload` reads the folder again and tells the running server, which then
    # serves a bot added while it ran; the broken one is offline with file:line.
    folder = tmp_path / "bots"
    folder.mkdir()
    shutil.copytree(TEST_BOTS / "echo.gbai", folder / "echo.gbai")
    settings = Settings(_env_file=None, database_url=database_url, bots_dir=folder)  # type: ignore[call-arg]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        server, task, port = await start_live_server(app)
        try:
            for name in ("broken", "survey"):
                shutil.copytree(TEST_BOTS / f"{name}.gbai", folder / f"{name}.gbai")
            url = f"http://127.0.0.1:{port}"
            reloaded = await asyncio.to_thread(
                botserver,
                "bots",
                "reload",
                "--url",
                url,
                env={**env, "BOTSERVER_BOTS_DIR": str(folder)},
                cwd=tmp_path,
            )
            assert reloaded.returncode == 0, reloaded.stderr
            *rows, told = reloaded.stdout.splitlines()
            assert sorted(rows) == [
                "broken\toffline\tstart.bas:3: Expected END IF",
                "echo\tonline",
                "survey\tonline",
            ]
            assert told == f"The server at {url} reloaded its bots."

            services = app.state.services
            carol = await services.users.get_by_username("carol")
            token = (await services.login_sessions.issue(carol.id)).token
            async with httpx.AsyncClient(base_url=url) as client:
                auth = {"Authorization": f"Bearer {token}"}
                bots = (await client.get("/api/bots", headers=auth)).json()["bots"]
                survey = next(b["id"] for b in bots if b["name"] == "survey")
                created = await client.post(
                    "/api/session/create", json={"bot_id": survey}, headers=auth
                )
                assert created.status_code == 201, created.text
                session_id = created.json()["session_id"]
                history = await client.get(f"/api/session/{session_id}/messages", headers=auth)
                said = [m["content"] for m in history.json()["messages"]]
                assert said == ["What is your name?"]
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=10)


async def read_frames_until_closed(reader: asyncio.StreamReader) -> list[tuple[int, bytes]]:
    """Server frames (opcode, payload) until the server hangs up; server frames are unmasked."""
    frames = []
    while head := await reader.read(2):
        if len(head) < 2:
            head += await reader.readexactly(1)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        frames.append((head[0] & 0x0F, await reader.readexactly(length)))
    return frames


async def test_serve_pings_idle_sockets_at_the_configured_interval(tmp_path: Path) -> None:
    port = find_free_port()
    env = {
        **os.environ,
        "BOTSERVER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'botserver.db'}",
        "BOTSERVER_BOTS_DIR": str(tmp_path),
        "BOTSERVER_ENV": "development",
        "BOTSERVER_ADMIN_PASSWORD": "admin-password-for-tests",
        "BOTSERVER_WS_PING_INTERVAL": "0.5",
    }
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "botserver", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health")).status_code == 200:
                        break
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                await asyncio.sleep(0.1)

        # A peer that completes the handshake and then never answers a ping.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /ws HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        response = await reader.readuntil(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101")
        started = time.monotonic()
        # Well before the 10 s an unauthenticated socket gets to send its auth frame.
        frames = await asyncio.wait_for(read_frames_until_closed(reader), timeout=8)
        writer.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The server pinged, got no pong within the timeout and closed the socket for that.
    assert time.monotonic() - started < 5
    assert [opcode for opcode, _ in frames] == [0x9, 0x8]
    close_code = int.from_bytes(frames[-1][1][:2], "big")
    assert (close_code, frames[-1][1][2:]) == (1011, b"keepalive ping timeout")
