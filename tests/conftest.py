"""Fixtures shared by the whole suite.

Every test that touches storage runs twice: on SQLite and on a real
PostgreSQL cluster that the suite starts on a free loopback port. Under
CI=true a missing PostgreSQL, Redis, node or chromium fails the run instead
of skipping.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from botserver.app import create_app
from botserver.clock import FrozenClock
from botserver.config import Settings
from botserver.services.container import Services
from tests.support.services import PostgresServer, RedisServer, find_free_port

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip locally when a service is missing; fail under CI, where skipping hides it."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required services may not be skipped)")
    pytest.skip(reason)


class _Startable(Protocol):
    def start(self) -> Any: ...


Startable = TypeVar("Startable", bound=_Startable)


def started(server: Startable, what: str) -> Startable:
    """`server`, started; when it cannot start, `require` says `what` is missing."""
    try:
        server.start()
    except RuntimeError as exc:
        require(False, f"{what} is not available: {exc}")
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = started(PostgresServer(), "PostgreSQL")
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = started(RedisServer(), "Redis")
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'botserver.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"t_{secrets.token_hex(6)}")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its app."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "bots_dir": ROOT / "bots",
        "public_url": "http://testserver",
        "secret_key": secrets.token_urlsafe(32),
        "admin_password": "admin-password-for-tests",
    }
    values.update(settings_overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def services(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Account:
    user_id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_account(services: Services) -> MakeAccount:
    """Create a user and a login-session token for it."""

    async def make(
        username: str | None = None, *, roles: list[str] | None = None, password: str | None = None
    ) -> Account:
        name = username or f"user{secrets.token_hex(3)}"
        user = await services.users.create(
            name, email=f"{name}@example.com", password=password, roles=roles or ["user"]
        )
        issued = await services.login_sessions.issue(user.id)
        return Account(user.id, name, issued.token)

    return make


@pytest.fixture
async def admin(make_account: MakeAccount) -> Account:
    return await make_account("root", roles=["admin"])


@dataclass
class LiveServer:
    app: FastAPI
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


async def start_live_server(
    application: FastAPI, port: int | None = None, **options: Any
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve an app on a loopback port (a free one unless given) from this event loop."""
    port = port or find_free_port()
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="off",
        ws="websockets-sansio",
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, port


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[LiveServer]:
    """The app (already started) behind a real uvicorn on a free loopback port."""
    server, task, port = await start_live_server(app)
    yield LiveServer(app, port)
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)
