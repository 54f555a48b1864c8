"""A real server on a known port, and Debian's chromium driven by Playwright.

The app is created with `public_url` set to the address the browser uses, so
redirects, cookies and origin checks behave as in production. Browser tests
run on SQLite only: the storage layer is covered on both databases elsewhere,
and a browser test is slow enough once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from botserver.clock import Clock
from botserver.services.container import Services
from tests.conftest import require, start_live_server
from tests.support.services import find_free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'botserver.db'}"


@pytest.fixture
def clock() -> Clock:
    """The wall clock: the page shows times of day, and nothing here waits for expiry."""
    return Clock()


@pytest.fixture
def web_port() -> int:
    return find_free_port()


@pytest.fixture
def settings_overrides(web_port: int) -> dict[str, Any]:
    return {"public_url": f"http://127.0.0.1:{web_port}"}


@dataclass
class WebServer:
    """The app behind uvicorn; `stop` and `start` simulate a server restart on the same port."""

    app: FastAPI
    port: int
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def start(self) -> None:
        self.server, self.task, _ = await start_live_server(self.app, self.port)

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=10)
        self.server = self.task = None


@pytest.fixture
async def web_server(app: FastAPI, web_port: int) -> AsyncIterator[WebServer]:
    server = WebServer(app, web_port)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    require(CHROMIUM.exists(), f"chromium is not installed at {CHROMIUM}")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, web_server: WebServer) -> AsyncIterator[BrowserContext]:
    created = await browser.new_context(base_url=web_server.url, locale="en-GB", timezone_id="UTC")
    created.set_default_timeout(10_000)
    yield created
    await created.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A tab; a script error or a policy violation on it fails the test."""
    opened = await context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield opened
    assert not problems, problems


async def sign_in_with_cookies(context: BrowserContext, server: WebServer, user_id: str) -> str:
    """Put a fresh login session's cookies in the browser, as /auth/callback would."""
    services = server.services
    issued = await services.login_sessions.issue(user_id)
    csrf = services.login_sessions.csrf_token(issued.session.id)
    await context.add_cookies(
        [
            {
                "name": "botserver_session",
                "value": issued.token,
                "url": server.url,
                "httpOnly": True,
                "sameSite": "Lax",
            },
            {"name": "botserver_csrf", "value": csrf, "url": server.url, "sameSite": "Lax"},
        ]
    )
    return issued.token
