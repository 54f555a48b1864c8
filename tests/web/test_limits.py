"""The page explains a spent rate budget and keeps what the user wrote."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, Route, expect

from tests.conftest import MakeAccount
from tests.web.conftest import WebServer, sign_in_with_cookies

pytestmark = pytest.mark.browser


@pytest.fixture
def settings_overrides(web_port: int) -> dict[str, Any]:
    return {"public_url": f"http://127.0.0.1:{web_port}", "rate_limit_authenticated": "10/hour"}


async def test_a_spent_budget_is_explained_and_nothing_is_lost(
    page: Page, context: BrowserContext, web_server: WebServer, make_account: MakeAccount
) -> None:
    account = await make_account("speedy")
    await sign_in_with_cookies(context, web_server, account.user_id)
    await page.goto("/")
    await page.get_by_role("button", name=re.compile("^default")).click()
    box = page.get_by_role("textbox", name="Message")
    await box.fill("Speedy")
    await box.press("Enter")

    # Every request and socket message counts; a few menu choices spend the rest.
    notice = page.get_by_role("alert")
    for _ in range(6):
        if await notice.is_visible():
            break
        await page.locator("#suggestions button").first.click(timeout=5_000)
        await page.wait_for_function(
            "() => window.__botserver.outbox.length === 0"
            " || !document.querySelector('#notice').hidden"
        )
    await expect(notice).to_contain_text("faster than allowed")
    await expect(notice).to_contain_text("min")
    held = page.locator("#transcript li.user.pending")
    await expect(held).to_have_count(1)
    await expect(held).to_contain_text("Not sent yet")
    assert await page.evaluate("window.__botserver.outbox.length") == 1


async def test_a_refused_start_is_not_mistaken_for_being_signed_out(page: Page) -> None:
    refusal = {"error": {"code": "RATE_LIMITED", "message": "Too many requests.", "details": {}}}

    async def refuse(route: Route) -> None:
        await route.fulfill(status=429, json=refusal, headers={"Retry-After": "120"})

    await page.route("**/api/users/me", refuse)
    await page.goto("/")
    await expect(page.get_by_role("status")).to_have_text(
        "Too many requests from you right now. Try again in 2 min."
    )
    await expect(page.get_by_role("button", name="Try again")).to_be_focused()
    await expect(page.get_by_role("link", name="Sign in")).to_be_hidden()
