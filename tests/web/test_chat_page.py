"""The chat page in a real browser against a real server."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import BrowserContext, Page, expect

from botserver.services.principal import Principal
from tests.conftest import MakeAccount
from tests.web.conftest import WebServer, sign_in_with_cookies

pytestmark = pytest.mark.browser


async def transcript(page: Page) -> list[tuple[str, str]]:
    """(sender, text) of every message on screen, in order."""
    rows = await page.locator("#transcript > li").evaluate_all(
        "items => items.map(li => [li.classList.contains('user') ? 'user' : 'bot',"
        " li.querySelector('.text').textContent, li.dataset.seq || ''])"
    )
    return [(sender, text) for sender, text, _ in rows]


async def seqs(page: Page) -> list[int]:
    values = await page.locator("#transcript > li").evaluate_all(
        "items => items.map(li => li.dataset.seq || '')"
    )
    return [int(v) for v in values if v]


async def last_bot_text(page: Page) -> str:
    return await page.locator("#transcript > li.bot .text").last.inner_text()


async def open_default_bot(page: Page) -> None:
    await page.goto("/")
    await page.get_by_role("button", name=re.compile(r"^default")).click()
    await expect(page.locator("#transcript li.bot").last).to_have_text(
        re.compile("What is your name?")
    )


async def synced(page: Page) -> None:
    await page.wait_for_function("() => window.__botserver.synced === true")


async def test_signed_out_visitors_are_offered_sign_in(page: Page) -> None:
    await page.goto("/")
    sign_in = page.get_by_role("link", name="Sign in")
    await expect(sign_in).to_be_visible()
    await expect(sign_in).to_be_focused()
    assert await sign_in.get_attribute("href") == "/auth/login?return_to=/"
    await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()


async def test_the_default_bots_menu_by_suggestions_then_reload_and_sign_out(
    page: Page, context: BrowserContext, web_server: WebServer, make_account: MakeAccount
) -> None:
    account = await make_account("ada")
    await sign_in_with_cookies(context, web_server, account.user_id)
    await open_default_bot(page)

    # The first question has no suggestions: answer it by typing, Enter sends.
    box = page.get_by_role("textbox", name="Message")
    await expect(box).to_be_focused()
    await box.fill("Ada")
    await box.press("Enter")
    await expect(box).to_have_value("")
    menu = page.get_by_role("group", name="Suggested replies")
    await expect(menu.get_by_role("button")).to_have_text(
        ["Tell me a joke", "What time is it?", "Change my name", "Bye"]
    )

    await menu.get_by_role("button", name="Tell me a joke").click()
    await expect(page.locator("#transcript li.bot .text").nth(-2)).to_contain_text("dark mode")
    await expect(box).to_be_focused()
    await menu.get_by_role("button", name="What time is it?").click()
    await expect(page.locator("#transcript li.bot .text").nth(-2)).to_contain_text("(UTC)")

    before = await transcript(page)
    assert before[:5] == [
        ("bot", "Hello! I am the default bot."),
        ("bot", "What is your name?"),
        ("user", "Ada"),
        ("bot", "Nice to meet you, Ada!"),
        ("bot", "What would you like to do, Ada?"),
    ]
    assert await seqs(page) == list(range(1, len(before) + 1))

    # A reload shows the same conversation, replayed from the server, and its menu.
    await page.reload()
    await synced(page)
    assert await transcript(page) == before
    assert await seqs(page) == list(range(1, len(before) + 1))
    await menu.get_by_role("button", name="Bye").click()
    await expect(page.locator("#transcript li.bot .text").last).to_have_text(
        "Goodbye, Ada! Come back soon."
    )

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    await expect(page.locator("#signed-out-reason")).to_have_text("You have signed out.")
    me = await page.request.get("/api/users/me")
    assert me.status == 401


async def test_a_dropped_connection_resumes_without_losing_or_doubling(
    page: Page, context: BrowserContext, web_server: WebServer, make_account: MakeAccount
) -> None:
    account = await make_account("grace")
    token = await sign_in_with_cookies(context, web_server, account.user_id)
    await open_default_bot(page)
    box = page.get_by_role("textbox", name="Message")
    await box.fill("Grace")
    await box.press("Enter")
    await expect(page.locator("#suggestions button")).to_have_count(4)
    session_id = await page.evaluate("window.__botserver.session.id")

    # The client side closes: the page reconnects by itself and resumes.
    await page.evaluate("window.__botserver.socket.close()")
    await expect(page.locator("#connection")).to_contain_text("Reconnecting")
    await expect(page.locator("#connection")).to_be_hidden()

    # The server goes away. While it is down, the user types; the conversation also goes on
    # elsewhere (another device), so the page misses two messages.
    await web_server.stop()
    await expect(page.locator("#connection")).to_contain_text("Reconnecting")
    await box.fill("What time is it?")
    await box.press("Enter")
    pending = page.locator("#transcript li.user.pending")
    await expect(pending).to_have_text(re.compile("What time is it?"))
    await box.fill("a draft I have not sent")

    services = web_server.services
    principal = await services.login_sessions.authenticate(token)
    assert isinstance(principal, Principal)
    await services.conversations.post(principal, session_id, "Tell me a joke")

    await web_server.start()
    await expect(page.locator("#connection")).to_be_hidden(timeout=15_000)
    await expect(pending).to_have_count(0)
    await expect(page.locator("#transcript li.bot .text").last).to_have_text(
        "What would you like to do, Grace?"
    )
    await synced(page)

    texts = [text for _, text in await transcript(page)]
    assert texts.count("What time is it?") == 1
    assert texts.count("Tell me a joke") == 1
    assert any("dark mode" in text for text in texts)
    assert await seqs(page) == list(range(1, len(texts) + 1))
    await expect(box).to_have_value("a draft I have not sent")

    history = await services.conversations.history(principal, session_id, 0, 100)
    assert [m["content"] for m in history] == texts
