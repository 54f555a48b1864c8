"""Golden transcripts of the example bots in bots/, driven through run_turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from botserver.engine.packages import BotPackage, load_package

from .host import Conversation, FakeHost, Message

BOTS = Path(__file__).resolve().parents[2] / "bots"
MENU = ["Tell me a joke", "What time is it?", "Change my name", "Bye"]


def package(name: str) -> BotPackage:
    loaded = load_package(BOTS / f"{name}.gbai")
    assert loaded.error is None, loaded.error
    return loaded


def conversation(name: str, host: FakeHost) -> Conversation:
    bot = package(name)
    assert bot.entry is not None
    return Conversation(bot.entry, host, params=bot.params)


async def transcript(chat: Conversation, turns: list[str]) -> list[str]:
    """Run the whole dialog; bot lines start with "bot:", user lines with "user:"."""
    lines = [f"bot: {text}" for text in await chat.start()]
    for turn in turns:
        assert not chat.ended, f"dialog ended before {turn!r}"
        lines.append(f"user: {turn}")
        lines.extend(f"bot: {text}" for text in await chat.say(turn))
    return lines


async def test_default_bot_first_visit() -> None:
    host = FakeHost()
    chat = conversation("default", host)
    lines = await transcript(
        chat,
        ["Ann", "tell me a joke", "What time is it?", "weather?", "Tell me a joke", "bye"],
    )
    assert lines == [
        "bot: Hello! I am the default bot.",
        "bot: What is your name?",
        "user: Ann",
        "bot: Nice to meet you, Ann!",
        "bot: What would you like to do, Ann?",
        "user: tell me a joke",
        "bot: Why do programmers prefer dark mode? Because light attracts bugs.",
        "bot: What would you like to do, Ann?",
        "user: What time is it?",
        "bot: It is 14:05 (UTC).",
        "bot: What would you like to do, Ann?",
        "user: weather?",
        "bot: Please choose one of: Tell me a joke, What time is it?, Change my name, Bye",
        "user: Tell me a joke",
        "bot: There are 10 kinds of people: those who know binary and those who don't.",
        "bot: What would you like to do, Ann?",
        "user: bye",
        "bot: Goodbye, Ann! Come back soon.",
    ]
    assert chat.ended
    assert host.user_memory == {"name": "Ann", "joke": 2}
    # every menu prompt carries the four buttons
    menus = [m for m in host.messages if m.content == "What would you like to do, Ann?"]
    assert menus and all(m.suggestions == MENU for m in menus)
    assert Message("Nice to meet you, Ann!", []) in host.messages


async def test_default_bot_remembers_the_name_and_can_change_it() -> None:
    host = FakeHost(user_memory={"name": "Ann", "joke": 2})
    chat = conversation("default", host)
    lines = await transcript(chat, ["Tell me a joke", "Change my name", "  Bea ", "Bye"])
    assert lines == [
        "bot: Welcome back, Ann!",
        "bot: What would you like to do, Ann?",
        "user: Tell me a joke",
        "bot: I would tell you a UDP joke, but you might not get it.",
        "bot: What would you like to do, Ann?",
        "user: Change my name",
        "bot: What is your name?",
        "user:   Bea ",
        "bot: Nice to meet you, Bea!",
        "bot: What would you like to do, Bea?",
        "user: Bye",
        "bot: Goodbye, Bea! Come back soon.",
    ]
    assert host.user_memory == {"name": "Bea", "joke": 3}


async def test_customer_service_billing_ticket() -> None:
    host = FakeHost(bot_memory={"ticket-counter": 41})
    chat = conversation("customer-service", host)
    lines = await transcript(
        chat,
        ["billing", "A-12", "1234", "19,90", "ann(at)example", "Ann@Example.com", "maybe", "yes"],
    )
    assert lines == [
        "bot: Welcome to Acme Corp customer service!",
        "bot: What can I help you with?",
        "user: billing",
        "bot: What is your order number?",
        "user: A-12",
        "bot: Please answer with a whole number.",
        "user: 1234",
        "bot: How much were you charged?",
        "user: 19,90",
        "bot: Which email address should we use to reach you?",
        "user: ann(at)example",
        "bot: Please answer with a valid email address.",
        "user: Ann@Example.com",
        "bot: Shall I open a ticket for: billing question about order #1234 (charged 19.90)?",
        "user: maybe",
        "bot: Please answer yes or no.",
        "user: yes",
        "bot: Ticket #42 is open: billing question about order #1234 (charged 19.90).",
        "bot: We will write to ann@example.com within one business day.",
        "bot: Thank you for contacting Acme Corp. Goodbye!",
    ]
    assert chat.ended
    assert host.bot_memory == {"ticket-counter": 42}
    assert host.user_memory == {"last-ticket": 42}
    assert host.context == {"topic": "Billing"}
    assert host.messages[1].suggestions == ["Billing", "Shipping", "Other"]
    (confirm,) = [m for m in host.messages if m.content.startswith("Shall I open")]
    assert confirm.suggestions == ["Yes", "No"]
    with_buttons = [m.content for m in host.messages if m.suggestions]
    assert with_buttons == ["What can I help you with?", confirm.content]


async def test_customer_service_counter_starts_at_one_and_shipping_dates() -> None:
    host = FakeHost()
    chat = conversation("customer-service", host)
    lines = await transcript(
        chat, ["Shipping", "77", "next week", "03/02/2024", "bob@example.org", "sim"]
    )
    assert lines[3:] == [
        "bot: What is your order number?",
        "user: 77",
        "bot: When should it have arrived?",
        "user: next week",
        "bot: Please answer with a date like 2024-12-31 or 31/12/2024.",
        "user: 03/02/2024",
        "bot: Which email address should we use to reach you?",
        "user: bob@example.org",
        "bot: Shall I open a ticket for: order #77 was due on 03/02/2024?",
        "user: sim",
        "bot: Ticket #1 is open: order #77 was due on 03/02/2024.",
        "bot: We will write to bob@example.org within one business day.",
        "bot: Thank you for contacting Acme Corp. Goodbye!",
    ]
    assert host.bot_memory == {"ticket-counter": 1}


@pytest.mark.parametrize("confirm", ["no", "Não"])
async def test_customer_service_other_topic_declined(confirm: str) -> None:
    host = FakeHost()
    chat = conversation("customer-service", host)
    lines = await transcript(chat, ["other", "  My app crashes  ", "c@d.io", confirm])
    assert lines[3:] == [
        "bot: Please describe the problem in one message.",
        "user:   My app crashes  ",
        "bot: Which email address should we use to reach you?",
        "user: c@d.io",
        "bot: Shall I open a ticket for: My app crashes?",
        f"user: {confirm}",
        "bot: No problem, I did not record anything.",
        "bot: Thank you for contacting Acme Corp. Goodbye!",
    ]
    assert host.bot_memory == {}
    assert host.context == {"topic": "Other"}
