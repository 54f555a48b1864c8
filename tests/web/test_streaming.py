"""A bot's streamed answer grows in one bubble on the page, from a real (stand-in) model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.api.test_llm_stream import write_bot
from tests.conftest import MakeAccount
from tests.support.fake_llm import KEY, MODEL, FakeLlm, canned_answer
from tests.web.conftest import WebServer, sign_in_with_cookies

pytestmark = pytest.mark.browser

POET = """\
TALK "Name a subject and I will write about it."
HEAR subject
ADD SUGGESTION "Thank you"
TALK LLM(subject)
"""


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    server = FakeLlm(delay=0.03).start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(web_port: int, fake_llm: FakeLlm, tmp_path: Path) -> dict[str, Any]:
    bots = tmp_path / "bots"
    config = {"llm-url": fake_llm.url, "llm-model": MODEL, "llm-key": KEY, "description": "Poems"}
    write_bot(bots, "poet", config, POET)
    return {"public_url": f"http://127.0.0.1:{web_port}", "bots_dir": bots}


async def test_streamed_text_grows_in_place(
    page: Page, context: BrowserContext, web_server: WebServer, make_account: MakeAccount
) -> None:
    account = await make_account("homer")
    await sign_in_with_cookies(context, web_server, account.user_id)
    await page.goto("/")
    await page.get_by_role("button", name=re.compile("^poet")).click()
    box = page.get_by_role("textbox", name="Message")
    await box.fill("the sea")
    await box.press("Enter")

    answer = canned_answer("the sea")
    bubble = page.locator("#transcript li.bot").nth(1)
    await expect(bubble).to_have_class(re.compile("streaming"))
    partial = await bubble.locator(".text").inner_text()
    assert partial and answer.startswith(partial) and partial != answer

    await expect(bubble.locator(".text")).to_have_text(answer)
    await expect(bubble).not_to_have_class(re.compile("streaming"))
    await expect(page.locator("#transcript li")).to_have_count(3)
    await expect(page.locator("#suggestions button")).to_have_text(["Thank you"])
    assert await bubble.get_attribute("data-seq") == "3"
