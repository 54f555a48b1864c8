"""Suspending at HEAR, storing the state as JSON and resuming elsewhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from botserver.engine.basic import DialogChanged, TurnResult, compile_source, run_turn

from .host import FakeHost

SOURCE = """
TALK "Let's add some numbers."
total = 0
CALL collect(3)
TALK "Total: " & total
FOR EACH word IN ["one", "two"]
    TALK "Say " & word
    HEAR echo
    TALK "You said " & echo
NEXT
TALK "Bye"

SUB collect(count)
    FOR i = 1 TO count
        TALK "Number " & i & " of " & count & "?"
        HEAR n AS INTEGER
        total = total + n
    NEXT
    TALK "Thanks"
END SUB
"""


def roundtrip(state: dict[str, Any] | None) -> dict[str, Any]:
    assert state is not None
    text = json.dumps(state)
    result: dict[str, Any] = json.loads(text)
    return result


async def test_suspend_inside_a_for_loop_inside_a_sub_and_resume_in_a_fresh_program() -> None:
    host = FakeHost()
    result = await run_turn(compile_source(SOURCE, "sum.bas"), host, None, None)
    state = roundtrip(result.state)
    assert host.texts() == ["Let's add some numbers.", "Number 1 of 3?"]
    # The state shows the VM in the SUB, in the loop, at the HEAR.
    assert [frame["sub"] for frame in state["frames"]] == [None, "collect"]
    assert state["frames"][1]["vars"] == {"count": 3, "i": 1}
    assert list(state["frames"][1]["loops"].values()) == [{"end": 3, "step": 1}]
    assert state["hear"] == {"var": "n", "kind": "INTEGER", "choices": [], "retries": 0}

    for answer in ["10", "20", "12"]:
        # A new process: compile the same text again, feed the stored state.
        program = compile_source(SOURCE, "sum.bas")
        result = await run_turn(program, host, state, answer)
        state = roundtrip(result.state)

    assert host.texts()[2:] == [
        "Number 2 of 3?",
        "Number 3 of 3?",
        "Thanks",
        "Total: 42",
        "Say one",
    ]
    assert [frame["sub"] for frame in state["frames"]] == [None]
    (loop,) = state["frames"][0]["loops"].values()
    assert loop == {"items": ["one", "two"], "index": 1}

    result = await run_turn(compile_source(SOURCE, "sum.bas"), host, state, "uno")
    state = roundtrip(result.state)
    result = await run_turn(compile_source(SOURCE, "sum.bas"), host, state, "dos")
    assert result.ended and result.state is None
    assert host.texts()[7:] == ["You said uno", "Say two", "You said dos", "Bye"]


async def test_state_is_not_shared_with_the_caller() -> None:
    program = compile_source("n = 1\nHEAR a\nn = n + 1\nHEAR b", "a.bas")
    first = await run_turn(program, FakeHost(), None, None)
    assert first.state is not None
    saved = json.dumps(first.state)
    second = await run_turn(program, FakeHost(), first.state, "x")
    assert json.dumps(first.state) == saved
    assert second.state is not None and second.state["frames"][0]["vars"]["n"] == 2


async def test_edited_source_raises_dialog_changed() -> None:
    program = compile_source('TALK "a"\nHEAR x\nTALK x', "start.bas")
    result = await run_turn(program, FakeHost(), None, None)
    edited = compile_source('TALK "a"\nTALK "new line"\nHEAR x\nTALK x', "start.bas")
    assert edited.source_hash != program.source_hash
    with pytest.raises(DialogChanged) as info:
        await run_turn(edited, FakeHost(), result.state, "hello")
    assert info.value.filename == "start.bas"
    assert info.value.expected_hash == edited.source_hash
    assert info.value.found_hash == program.source_hash


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.update(version=99),
        lambda s: s.update(pc=0),
        lambda s: s.update(pc=10_000),
        lambda s: s.update(hear=None),
        lambda s: s.pop("frames"),
        lambda s: s.update(frames=[]),
        lambda s: s["frames"][0].pop("vars"),
        lambda s: s["hear"].pop("kind"),
        lambda s: s["frames"].append({"vars": {}, "loops": {}}),
    ],
)
async def test_unusable_states_raise_dialog_changed(damage: Any) -> None:
    program = compile_source('TALK "a"\nHEAR x\nTALK x', "start.bas")
    result: TurnResult = await run_turn(program, FakeHost(), None, None)
    state = roundtrip(result.state)
    damage(state)
    with pytest.raises(DialogChanged):
        await run_turn(program, FakeHost(), state, "hello")


async def test_a_waiting_state_has_the_documented_keys() -> None:
    program = compile_source("HEAR x", "start.bas")
    result = await run_turn(program, FakeHost(), None, None, params={"company": "Acme"})
    assert result.state is not None
    assert set(result.state) == {
        "version",
        "source_hash",
        "filename",
        "pc",
        "frames",
        "suggestions",
        "hear",
    }
    assert result.state["source_hash"] == program.source_hash
    assert result.state["frames"][0]["vars"] == {"company": "Acme"}
    assert result.waiting_for == "x" and not result.ended
