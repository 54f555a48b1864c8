"""HEAR: typed answers, conversions and polite retries."""

from __future__ import annotations

from typing import Any

import pytest

from botserver.engine.basic import compile_source, run_turn

from .host import Conversation, FakeHost, Message, compile_text


async def answer(kind: str, text: str) -> tuple[bool, Any, list[str]]:
    """Ask one typed HEAR; return (accepted, stored value, what the bot said)."""
    conversation = Conversation(compile_text(f"HEAR v AS {kind}\nHEAR stop"))
    await conversation.start()
    said = await conversation.say(text)
    state = conversation.state
    assert state is not None
    accepted = state["hear"]["var"] == "stop"
    return accepted, state["frames"][0]["vars"].get("v"), said


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("STRING", "  hello there ", "hello there"),
        ("STRING", "", ""),
        ("INTEGER", "42", 42),
        ("INTEGER", " -7 ", -7),
        ("NUMBER", "3", 3),
        ("NUMBER", "2.5", 2.5),
        ("NUMBER", "19,90", 19.9),
        ("BOOLEAN", "yes", True),
        ("BOOLEAN", "TRUE", True),
        ("BOOLEAN", "Sim", True),
        ("BOOLEAN", "1", True),
        ("BOOLEAN", "no", False),
        ("BOOLEAN", "false", False),
        ("BOOLEAN", "NÃO", False),
        ("BOOLEAN", "0", False),
        ("DATE", "2024-02-29", "2024-02-29"),
        ("DATE", "31/12/2023", "2023-12-31"),
        ("EMAIL", "ann@example.com", "ann@example.com"),
        ('"Billing", "Shipping"', "shipping", "Shipping"),
    ],
)
async def test_accepted_answers_are_converted(kind: str, text: str, expected: Any) -> None:
    accepted, value, said = await answer(kind, text)
    assert accepted
    assert said == []
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "text", "retry"),
    [
        ("INTEGER", "4.5", "Please answer with a whole number."),
        ("INTEGER", "four", "Please answer with a whole number."),
        ("NUMBER", "1.2.3", "Please answer with a number."),
        ("BOOLEAN", "maybe", "Please answer yes or no."),
        ("DATE", "2023-02-30", "Please answer with a date like 2024-12-31 or 31/12/2024."),
        ("DATE", "tomorrow", "Please answer with a date like 2024-12-31 or 31/12/2024."),
        ("EMAIL", "ann@", "Please answer with a valid email address."),
        ("EMAIL", "ann example.com", "Please answer with a valid email address."),
        ('"a", "b"', "c", "Please choose one of: a, b"),
    ],
)
async def test_rejected_answers_are_asked_again(kind: str, text: str, retry: str) -> None:
    accepted, value, said = await answer(kind, text)
    assert not accepted
    assert value is None
    assert said == [retry]


async def test_retry_keeps_waiting_at_the_same_hear_and_counts() -> None:
    host = FakeHost()
    program = compile_source(
        'TALK "Age?"\nHEAR age AS INTEGER\nTALK "In ten years: " & age + 10', "a.bas"
    )
    first = await run_turn(program, host, None, None)
    assert first.state is not None and first.waiting_for == "age"
    second = await run_turn(program, host, first.state, "old")
    assert second.retry and second.state is not None
    assert second.state["pc"] == first.state["pc"]
    assert second.state["hear"]["retries"] == 1
    third = await run_turn(program, host, second.state, "still old")
    assert third.state is not None and third.state["hear"]["retries"] == 2
    last = await run_turn(program, host, third.state, "30")
    assert last.ended and last.state is None
    assert host.texts() == [
        "Age?",
        "Please answer with a whole number.",
        "Please answer with a whole number.",
        "In ten years: 40",
    ]


async def test_choice_retry_offers_the_choices_as_suggestions() -> None:
    host = FakeHost()
    conversation = Conversation(compile_text('HEAR c AS "Red", "Blue"'), host)
    await conversation.start()
    await conversation.say("green")
    assert host.messages == [Message("Please choose one of: Red, Blue", ["Red", "Blue"])]


async def test_choices_can_come_from_a_list_variable() -> None:
    conversation = Conversation(
        compile_text('options = SPLIT("tea,coffee")\nHEAR drink AS options\nTALK drink')
    )
    await conversation.start()
    assert conversation.state is not None
    assert conversation.state["hear"]["choices"] == ["tea", "coffee"]
    assert await conversation.say("COFFEE") == ["coffee"]


async def test_resuming_without_input_is_refused() -> None:
    program = compile_text("HEAR x")
    result = await run_turn(program, FakeHost(), None, None)
    with pytest.raises(ValueError, match="user_input"):
        await run_turn(program, FakeHost(), result.state, None)


async def test_an_empty_choice_list_accepts_any_answer() -> None:
    conversation = Conversation(compile_text('HEAR pick AS nothing, ""\nTALK "got " & pick'))
    await conversation.start()
    assert conversation.state is not None
    assert conversation.state["hear"]["choices"] == []
    assert await conversation.say(" anything ") == ["got anything"]
