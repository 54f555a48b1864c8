"""The LLM keyword: an expression that waits, and TALK LLM(...) that streams."""

from __future__ import annotations

import pytest

from botserver.engine.basic import BasicRuntimeError, BasicSyntaxError, LimitExceeded
from botserver.engine.basic import program as p

from .host import FakeHost, Message, compile_text, run_script


async def test_llm_in_an_expression_gives_the_whole_answer_without_streaming() -> None:
    host = FakeHost()
    conversation, said = await run_script(
        'subject = "the sea"\nx = LLM("Write about " & subject)\nTALK "Got: " & x\nHEAR stop',
        host,
    )
    assert host.prompts == ["Write about the sea"]
    assert said == ["Got: An answer about Write about the sea."]
    assert host.streams == []
    assert conversation.state is not None
    assert conversation.state["frames"][0]["vars"]["x"] == "An answer about Write about the sea."


async def test_talk_llm_streams_and_attaches_the_pending_suggestions() -> None:
    host = FakeHost()
    _, said = await run_script(
        'ADD SUGGESTION "More"\nTALK LLM("the moon")\nTALK "Anything else?"', host
    )
    assert said == ["An answer about the moon.", "Anything else?"]
    assert host.streams == [["An ", "answer ", "about ", "the ", "moon."]]
    assert host.messages[0] == Message("An answer about the moon.", ["More"])
    assert host.messages[1].suggestions == []  # used up by the streamed TALK


def test_only_a_talk_of_a_direct_llm_call_compiles_to_a_stream() -> None:
    streamed = compile_text('TALK LLM("a")\nTALK (LLM("b"))')
    assert [type(i) for i in streamed.code[:2]] == [p.TalkLlmI, p.TalkLlmI]
    waited = compile_text('TALK LLM("a") & "!"\nTALK "x" & LLM("b")\nTALK UCASE(LLM("c"))')
    assert [type(i) for i in waited.code[:3]] == [p.TalkI, p.TalkI, p.TalkI]


async def test_llm_inside_a_bigger_talk_waits_for_the_whole_answer() -> None:
    host = FakeHost(answer=lambda prompt: prompt.upper())
    _, said = await run_script('TALK "[" & LLM("quiet") & "]"', host)
    assert said == ["[QUIET]"]
    assert host.streams == []


async def test_an_empty_streamed_answer_is_said_like_an_empty_talk() -> None:
    host = FakeHost(answer=lambda prompt: "")
    _, said = await run_script('ADD SUGGESTION "Retry"\nTALK LLM("nothing")', host)
    assert host.messages == [Message("", ["Retry"])]
    assert said == [""]


@pytest.mark.parametrize("call", ["LLM()", 'LLM("a", "b")'])
def test_llm_takes_exactly_one_argument(call: str) -> None:
    with pytest.raises(BasicSyntaxError) as caught:
        compile_text(f'TALK "hi"\nx = {call}')
    assert caught.value.line == 2
    assert "LLM expects 1 argument" in caught.value.message


async def test_llm_is_still_usable_as_a_variable_name() -> None:
    _, said = await run_script("llm = 2\nTALK llm * 3")
    assert said == ["6"]


async def test_a_bot_without_an_llm_is_a_runtime_error_naming_file_and_line() -> None:
    host = FakeHost(llm_failure="This bot has no llm-url configured")
    with pytest.raises(BasicRuntimeError) as caught:
        await run_script('TALK "Thinking..."\nx = LLM("anything")', host)
    assert str(caught.value) == "start.bas:2: This bot has no llm-url configured"
    assert host.texts() == ["Thinking..."]


async def test_a_stream_failing_midway_keeps_what_arrived_and_names_the_line() -> None:
    host = FakeHost(llm_failure="The LLM endpoint broke off the answer", fail_after=2)
    with pytest.raises(BasicRuntimeError) as caught:
        await run_script('TALK "One moment."\n\nTALK LLM("the stars")\nTALK "never"', host)
    assert (caught.value.filename, caught.value.line) == ("start.bas", 3)
    assert host.texts() == ["One moment.", "An answer "]


async def test_an_answer_over_the_string_limit_is_a_limit_error() -> None:
    host = FakeHost(answer=lambda prompt: "x" * 70_000)
    with pytest.raises(LimitExceeded) as caught:
        await run_script('x = LLM("long")', host)
    assert caught.value.line == 1
