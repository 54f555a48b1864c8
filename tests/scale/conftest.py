"""A deployment of two real instances on one PostgreSQL database and one Redis."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from botserver.config import Settings
from botserver.services.container import Services
from tests.scale.cluster import (
    ROOT,
    Balancer,
    Instance,
    app_env,
    new_secret,
    run_cli,
    start_instances,
)
from tests.support.services import PostgresServer, RedisServer


@dataclass
class Deployment:
    env: dict[str, str]
    bots_dir: Path
    logs: Path
    a: Instance
    b: Instance
    token: str  # a user's login-session token
    public_url: str  # the load balancer in front of both, as every instance is told

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_account(
    env: dict[str, str], name: str | None = None, password: str | None = None
) -> str:
    """A user and a login-session token, made through the services on the shared database."""
    name = name or f"user{secrets.token_hex(3)}"
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=env["BOTSERVER_DATABASE_URL"]
    )
    services = Services.build(settings)
    try:
        user = await services.users.create(name, email=f"{name}@example.com", password=password)
        return (await services.login_sessions.issue(user.id)).token
    finally:
        await services.close()


def copy_bots(target: Path) -> Path:
    shutil.copytree(ROOT / "tests" / "bots", target)
    return target


@pytest.fixture(scope="module")
async def deployment(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    base = tmp_path_factory.mktemp("deployment")
    database_url = postgres.create_database(f"scale_{secrets.token_hex(4)}")
    bots_dir = copy_bots(base / "bots")
    env = app_env(database_url, redis_server.url, bots_dir, new_secret())
    balancer = Balancer()
    env["BOTSERVER_PUBLIC_URL"] = balancer.url
    run_cli(env, "migrate")  # before the rollout, as in production
    token = await new_account(env)
    a, b = await start_instances(env, base, 2)
    try:
        await balancer.start([a, b])
        yield Deployment(env, bots_dir, base, a, b, token, balancer.url)
    finally:
        await balancer.close()
        for instance in (a, b):
            instance.stop()


async def open_session(url: str, headers: dict[str, str], bot: str = "echo") -> str:
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        bots = (await client.get("/api/bots")).json()["bots"]
        bot_id = next(b["id"] for b in bots if b["name"] == bot)
        created = await client.post("/api/session/create", json={"bot_id": bot_id})
        assert created.status_code == 201, created.text
        session_id: str = created.json()["session_id"]
        return session_id


async def history(url: str, headers: dict[str, str], session_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        while True:
            page = (
                await client.get(
                    f"/api/session/{session_id}/messages",
                    params={"after_seq": after, "limit": 200},
                )
            ).json()
            messages.extend(page["messages"])
            if not page["has_more"]:
                return messages
            after = page["next_after_seq"]
