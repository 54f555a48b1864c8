"""The operator commands, end to end, as separate processes against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from botserver.app import create_app
from botserver.config import Settings


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
