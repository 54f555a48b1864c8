"""The chat page in a real browser against a real server."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, WebSocketRoute, expect

from botserver.services.principal import Principal
from tests.conftest import MakeAccount
from tests.support.signin import cheap_password_hashing  # noqa: F401
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
    await make_account("ada", password="correct horse battery")
    await page.goto("/")
    await page.get_by_role("link", name="Sign in").click()
    # The embedded directory's form, styled by the page's own stylesheet.
    await expect(page).to_have_title("Sign in · botserver")
    await expect(page.locator(".brand-name")).to_have_text("botserver")
    await page.get_by_label("Username").fill("ada")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_label("Username")).to_have_value("ada")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#user-name")).to_have_text("ada")
    assert page.url == f"{web_server.url}/"
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

    # A new tab has its own sessionStorage; it finds the conversation through GET /api/session.
    other = await context.new_page()
    await other.goto("/")
    await synced(other)
    assert await transcript(other) == await transcript(page)
    await other.close()


async def test_streaming_rate_limits_and_an_ended_session(
    page: Page, context: BrowserContext, web_server: WebServer, make_account: MakeAccount
) -> None:
    account = await make_account("linus")
    token = await sign_in_with_cookies(context, web_server, account.user_id)
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        # Pass everything through, but keep a handle to slip extra frames to the page.
        route.connect_to_server()
        sockets.append(route)

    await page.route_web_socket(re.compile(r"/ws$"), through)
    await open_default_bot(page)
    box = page.get_by_role("textbox", name="Message")
    await box.fill("Linus")
    await box.press("Enter")
    await expect(page.locator("#suggestions button")).to_have_count(4)
    session_id = await page.evaluate("window.__botserver.session.id")

    def slip(frame: dict[str, Any]) -> None:
        sockets[-1].send(json.dumps({"session_id": session_id, **frame}))

    # Over the limit: the page says so, holds the message back, then delivers it once.
    slip(
        {
            "type": "error",
            "error": {
                "code": "RATE_LIMITED",
                "message": "Too many requests; slow down.",
                "details": {"retry_after": 1},
            },
        }
    )
    notice = page.get_by_role("alert")
    await expect(notice).to_contain_text("faster than allowed")
    await box.fill("Tell me a joke")
    await box.press("Enter")
    await expect(page.locator("#transcript li.user.pending")).to_contain_text("Not sent yet")
    await expect(notice).to_be_hidden(timeout=5_000)
    await expect(page.locator("#transcript li.bot .text").nth(-2)).to_contain_text("dark mode")
    texts = [text for _, text in await transcript(page)]
    assert texts.count("Tell me a joke") == 1

    # Streamed text grows in one bubble, and the complete frame settles it.
    bubbles = page.locator("#transcript li.bot")
    count = await bubbles.count()
    next_seq = max(await seqs(page)) + 1
    stream = {"type": "message", "message_id": "msg-streamed", "sender": "bot"}
    slip({**stream, "delta": "Once upon", "is_complete": False})
    await expect(bubbles.last).to_have_class(re.compile("streaming"))
    await expect(bubbles.last.locator(".text")).to_have_text("Once upon")
    slip({**stream, "delta": " a time", "is_complete": False})
    await expect(bubbles.last.locator(".text")).to_have_text("Once upon a time")
    slip(
        {
            **stream,
            "seq": next_seq,
            "content": "Once upon a time, there was a bot.",
            "suggestions": ["Go on"],
            "is_complete": True,
            "created_at": "2026-01-01T12:00:00Z",
        }
    )
    await expect(bubbles.last.locator(".text")).to_have_text("Once upon a time, there was a bot.")
    await expect(bubbles.last).not_to_have_class(re.compile("streaming"))
    await expect(bubbles).to_have_count(count + 1)
    await expect(page.locator("#suggestions button")).to_have_text(["Go on"])

    # The session ends elsewhere: the page says so and offers a new one.
    services = web_server.services
    principal = await services.login_sessions.authenticate(token)
    assert isinstance(principal, Principal)
    await services.conversations.end_session(principal, session_id)
    await expect(notice).to_contain_text("This conversation has ended.")
    start_again = page.get_by_role("button", name="Start a new conversation")
    await expect(start_again).to_be_focused()
    await expect(box).to_be_disabled()
    await start_again.click()
    await expect(page.locator("#transcript li.bot .text").first).to_have_text(
        "Welcome back, Linus!"
    )
    await expect(box).to_be_enabled()
    assert await page.evaluate("window.__botserver.session.id") != session_id


async def test_the_typing_indicator_and_an_expired_session(
    page: Page, context: BrowserContext, web_server: WebServer, make_account: MakeAccount
) -> None:
    account = await make_account("edsger")
    await sign_in_with_cookies(context, web_server, account.user_id)
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        route.connect_to_server()
        sockets.append(route)

    await page.route_web_socket(re.compile(r"/ws$"), through)
    await open_default_bot(page)
    await synced(page)
    session_id = await page.evaluate("window.__botserver.session.id")
    typing = page.locator("#typing")
    await expect(typing).to_be_hidden()

    # The bot starts typing: the page says who; its message then takes the indicator's place.
    sockets[-1].send(json.dumps({"type": "typing", "session_id": session_id, "sender": "bot"}))
    await expect(typing).to_be_visible()
    await expect(typing).to_have_text("default is typing…")
    box = page.get_by_role("textbox", name="Message")
    await box.fill("Edsger")
    await box.press("Enter")
    await expect(page.locator("#suggestions button")).to_have_count(4)
    await expect(typing).to_be_hidden()

    # The session's idle time runs out; the next message finds it expired.
    async with web_server.services.db.unit() as uow:
        session = await uow.conversations.lock_session(session_id)
        assert session is not None
        session.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    await box.fill("Tell me a joke")
    await box.press("Enter")
    notice = page.get_by_role("alert")
    await expect(notice).to_contain_text("This conversation expired after a period of inactivity.")
    await expect(page.get_by_role("button", name="Start a new conversation")).to_be_focused()
    await expect(box).to_be_disabled()


async def test_fits_a_phone_and_works_from_the_keyboard(
    page: Page,
    context: BrowserContext,
    web_server: WebServer,
    make_account: MakeAccount,
    tmp_path: Path,
) -> None:
    """Also takes the README's screenshot: WEB_SCREENSHOT=docs/screenshot.png pytest …"""
    account = await make_account("margaret")
    await sign_in_with_cookies(context, web_server, account.user_id)
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.goto("/")

    # Keyboard only: the first bot has focus, Enter opens it, Enter sends, Tab reaches the menu.
    choices = page.locator("#bot-list button")
    await expect(choices.first).to_be_focused()
    names = await choices.evaluate_all("items => items.map(b => b.dataset.botName)")
    for _ in range(names.index("default")):
        await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name=re.compile(r"^default"))).to_be_focused()
    await page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="Message")
    await expect(box).to_be_focused()
    await expect(page.locator("#transcript li.bot").last).to_have_text(
        re.compile("What is your name?")
    )
    await page.keyboard.type("Margaret")
    await page.keyboard.press("Enter")
    first = page.get_by_role("button", name="Tell me a joke")
    await expect(first).to_be_visible()
    await box.press("Shift+Tab")  # the suggestions sit right above the message box
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await expect(first).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#transcript li.bot .text").nth(-2)).to_contain_text("dark mode")

    # The newest message stays in view above the suggestions; nothing sticks out sideways.
    await expect(page.locator("#transcript li").last).to_be_in_viewport()
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 360
    await page.screenshot(path=str(tmp_path / "phone.png"))

    target = os.environ.get("WEB_SCREENSHOT")
    if target:
        await page.set_viewport_size({"width": 880, "height": 720})
        await page.get_by_role("button", name="What time is it?").click()
        await expect(page.locator("#transcript li.bot .text").nth(-2)).to_contain_text("(UTC)")
        await page.mouse.move(0, 639)
        await box.focus()
        await page.screenshot(path=target)
