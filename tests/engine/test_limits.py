"""Safety limits: step budget, call depth, string and list sizes."""

from __future__ import annotations

import asyncio
import time

import pytest

from botserver.engine.basic import (
    BasicRuntimeError,
    BasicSyntaxError,
    CallDepthExceeded,
    LimitExceeded,
    Limits,
    StepBudgetExceeded,
    compile_source,
    run_turn,
)

from .host import Conversation, FakeHost, run_script


async def test_step_budget_stops_an_endless_loop_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(StepBudgetExceeded) as info:
        await run_script('TALK "spin"\nWHILE TRUE\nWEND')
    assert time.monotonic() - started < 2
    assert info.value.filename == "start.bas"
    assert info.value.line in (2, 3)
    assert str(info.value).startswith("start.bas:")
    assert "Step budget of 10000 instructions exceeded" in str(info.value)


async def test_step_budget_is_configurable_and_counted_per_turn() -> None:
    source = "FOR i = 1 TO 40\nNEXT\nHEAR x\nFOR i = 1 TO 40\nNEXT"
    limits = Limits(max_steps=100)
    conversation = Conversation(compile_source(source, "loop.bas"), limits=limits)
    await conversation.start()  # about 82 steps
    await conversation.say("again")  # another 82: fine, the budget is per turn
    assert conversation.ended
    assert conversation.last is not None and 80 < conversation.last.steps <= 100
    with pytest.raises(StepBudgetExceeded):
        await run_script("FOR i = 1 TO 60\nNEXT", limits=limits)


async def test_recursion_depth_is_limited() -> None:
    source = "CALL dive(1)\nSUB dive(n)\n  CALL dive(n + 1)\nEND SUB"
    with pytest.raises(CallDepthExceeded) as info:
        await run_script(source)
    assert str(info.value) == "start.bas:3: Maximum call depth of 64 exceeded (endless recursion?)"


async def test_call_depth_is_configurable() -> None:
    source = "CALL dive(1)\nSUB dive(n)\n  IF n < 5 THEN CALL dive(n + 1)\nEND SUB"
    await run_script(source, limits=Limits(max_call_depth=5))
    with pytest.raises(CallDepthExceeded):
        await run_script(source, limits=Limits(max_call_depth=4))


async def test_string_length_is_limited() -> None:
    source = 's = "x"\nWHILE TRUE\n  s = s & s\nWEND'
    with pytest.raises(LimitExceeded) as info:
        await run_script(source)
    assert str(info.value) == "start.bas:3: String longer than 65536 characters"


@pytest.mark.parametrize(
    "expression",
    ['REPLACE(s, "a", s)', "s + s", '"${s}${s}"', 'JOIN([s, s], "")', "UCASE(s) & s"],
)
async def test_every_way_of_building_strings_is_limited(expression: str) -> None:
    limits = Limits(max_string_length=100)
    with pytest.raises(LimitExceeded, match="String longer than 100 characters"):
        await run_script(f"x = {expression}", params={"s": "a" * 60}, limits=limits)


async def test_list_length_is_limited() -> None:
    source = "items = [1]\nWHILE TRUE\n  items = items + items\nWEND"
    with pytest.raises(LimitExceeded) as info:
        await run_script(source)
    assert str(info.value) == "start.bas:3: List longer than 10000 items"


async def test_split_results_are_limited() -> None:
    with pytest.raises(LimitExceeded, match="List longer than 3 items"):
        await run_script('x = SPLIT("a,b,c,d")', limits=Limits(max_list_length=3))


async def test_text_held_by_a_list_is_limited() -> None:
    limits = Limits(max_list_text_length=100)
    with pytest.raises(LimitExceeded, match="List holds more than 100 characters"):
        await run_script("x = [s, s]", params={"s": "a" * 60}, limits=limits)


async def test_oversized_answers_and_params_are_refused() -> None:
    limits = Limits(max_string_length=10)
    program = compile_source("HEAR x", "start.bas")
    result = await run_turn(program, FakeHost(), None, None, limits=limits)
    with pytest.raises(LimitExceeded, match=r"start\.bas:1: String longer than 10"):
        await run_turn(program, FakeHost(), result.state, "a" * 11, limits=limits)
    with pytest.raises(LimitExceeded, match="Parameter"):
        await run_turn(program, FakeHost(), None, None, params={"p": "b" * 11}, limits=limits)


async def test_limit_errors_are_runtime_errors() -> None:
    assert issubclass(StepBudgetExceeded, LimitExceeded)
    assert issubclass(CallDepthExceeded, LimitExceeded)
    assert issubclass(LimitExceeded, BasicRuntimeError)


async def test_a_running_script_lets_other_tasks_run() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    with pytest.raises(StepBudgetExceeded):
        await run_script("WHILE TRUE\nWEND", limits=Limits(max_steps=5000, yield_every=100))
    during = ticks - before
    stop.set()
    await task
    assert during >= 40  # about one tick per 100 steps


async def test_long_expressions_and_deep_blocks_are_compile_errors() -> None:
    fine = "x = 0" + " + 1" * 150 + "\nTALK x"
    _, said = await run_script(fine)
    assert said == ["150"]
    with pytest.raises(BasicSyntaxError, match=r"start\.bas:2: Expression is nested too deeply"):
        compile_source("TALK 1\nx = 0" + " + 1" * 1000, "start.bas")
    nested = "IF 1 THEN\n" * 150 + "TALK 1\n" + "END IF\n" * 150
    with pytest.raises(BasicSyntaxError, match=r"start\.bas:102: Blocks are nested more than 100"):
        compile_source(nested, "start.bas")
