"""Control flow, SUBs and the bot statements, run through ``run_turn``."""

from __future__ import annotations

import pytest

from botserver.engine.basic import Limits

from .host import FakeHost, Message, run_script


async def test_talk_and_interpolation() -> None:
    _, said = await run_script('name = "Ann"\nn = 3\nTALK "Hi ${name}, ${n} new, ${missing}."')
    assert said == ["Hi Ann, 3 new, ."]


async def test_set_and_plain_assignment() -> None:
    _, said = await run_script("SET a = 1\nb = a + 1\nset B = b * 10\nTALK a & b")
    assert said == ["120"]


async def test_params_become_variables() -> None:
    _, said = await run_script('TALK "Welcome to ${company}"', params={"Company": "Acme"})
    assert said == ["Welcome to Acme"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "one"), (2, "two"), (3, "three"), (4, "other")],
)
async def test_if_elseif_else(value: int, expected: str) -> None:
    source = (
        'IF x = 1 THEN\n  TALK "one"\nELSEIF x = 2 THEN\n  TALK "two"\n'
        'ELSE IF x = 3 THEN\n  TALK "three"\nELSE\n  TALK "other"\nEND IF\nTALK "done"'
    )
    _, said = await run_script(source, params={"x": value})
    assert said == [expected, "done"]


async def test_single_line_if() -> None:
    source = 'IF 1 < 2 THEN TALK "yes"\nIF 1 > 2 THEN TALK "no"\nIF 0 THEN x = 1 ELSE x = 2\nTALK x'
    _, said = await run_script(source)
    assert said == ["yes", "2"]


async def test_for_loops() -> None:
    source = (
        "FOR i = 1 TO 3\n  TALK i\nNEXT i\n"
        "FOR i = 10 TO 1 STEP -4\n  TALK i\nNEXT\n"
        "FOR x = 0 TO 1 STEP 0.5\n  TALK x\nNEXT\n"
        'FOR i = 5 TO 1\n  TALK "never"\nNEXT\n'
        'TALK "after " & i'
    )
    _, said = await run_script(source)
    assert said == ["1", "2", "3", "10", "6", "2", "0", "0.5", "1", "after 5"]


async def test_for_each_over_lists_and_split() -> None:
    source = (
        'FOR EACH fruit IN ["apple", "pear"]\n  TALK UCASE(fruit)\nNEXT fruit\n'
        'FOR EACH part IN SPLIT("a;b", ";")\n  TALK part\nNEXT\n'
        'FOR EACH thing IN nothing\n  TALK "never"\nNEXT\n'
        'FOR EACH one IN "single"\n  TALK one\nNEXT'
    )
    _, said = await run_script(source)
    assert said == ["APPLE", "PEAR", "a", "b", "single"]


async def test_exit_for_leaves_only_the_inner_loop() -> None:
    source = (
        "FOR i = 1 TO 3\n"
        "  FOR EACH j IN [1, 2, 3]\n"
        "    IF j = 2 THEN EXIT FOR\n"
        '    TALK i & ":" & j\n'
        "  NEXT\n"
        "  IF i = 2 THEN\n    EXIT FOR\n  END IF\n"
        "NEXT\n"
        'TALK "end " & i'
    )
    _, said = await run_script(source)
    assert said == ["1:1", "2:1", "end 2"]


async def test_nested_loops_restart_inner_state() -> None:
    source = "FOR i = 1 TO 2\n  FOR j = 1 TO 2\n    TALK i & j\n  NEXT\nNEXT"
    _, said = await run_script(source)
    assert said == ["11", "12", "21", "22"]


async def test_while_wend() -> None:
    _, said = await run_script('n = 0\nWHILE n < 3\n  n = n + 1\n  TALK n\nWEND\nTALK "end"')
    assert said == ["1", "2", "3", "end"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("red", "warm"), ("ORANGE", "warm"), ("blue", "cold"), ("green", "unknown"), (7, "seven")],
)
async def test_select_case(value: object, expected: str) -> None:
    source = (
        "SELECT CASE colour\n"
        '  CASE "red", "orange"\n    TALK "warm"\n'
        '  CASE "blue"\n    TALK "cold"\n'
        '  CASE 3 + 4\n    TALK "seven"\n'
        '  CASE ELSE\n    TALK "unknown"\n'
        "END SELECT\n"
        'TALK "done"'
    )
    _, said = await run_script(source, params={"colour": value})
    assert said == [expected, "done"]


async def test_select_case_without_else_and_no_match() -> None:
    _, said = await run_script('SELECT CASE 5\nCASE 1\nTALK "one"\nEND SELECT\nTALK "done"')
    assert said == ["done"]


async def test_subs_run_only_when_called_and_take_arguments() -> None:
    source = (
        'SUB greet(who, punctuation)\n  TALK "Hello " & who & punctuation\nEND SUB\n'
        'TALK "start"\nCALL greet("Ann", "!")\ncall Greet("Bob", "?")\nTALK "end"\n'
        'SUB unused\n  TALK "never"\nEND SUB\n'
    )
    _, said = await run_script(source)
    assert said == ["start", "Hello Ann!", "Hello Bob?", "end"]


async def test_sub_scoping() -> None:
    source = (
        "counter = 0\n"
        "CALL bump(5)\nCALL bump(2)\n"
        'TALK counter & "|" & amount & "|" & temp\n'
        "SUB bump(amount)\n"
        "  temp = amount * 2\n"
        "  counter = counter + amount\n"
        "END SUB"
    )
    _, said = await run_script(source)
    # globals are updated, parameters and new variables stay local
    assert said == ["7||"]


async def test_exit_sub_and_recursion() -> None:
    source = (
        'CALL countdown(3)\nTALK "liftoff"\n'
        "SUB countdown(n)\n"
        "  IF n = 0 THEN EXIT SUB\n"
        "  TALK n\n"
        "  CALL countdown(n - 1)\n"
        '  TALK "back " & n\n'
        "END SUB"
    )
    _, said = await run_script(source)
    assert said == ["3", "2", "1", "back 1", "back 2", "back 3", "liftoff"]


async def test_exit_sub_inside_a_loop() -> None:
    source = (
        'CALL find("c")\nTALK "done"\n'
        "SUB find(wanted)\n"
        '  FOR EACH letter IN ["a", "b", "c", "d"]\n'
        "    TALK letter\n"
        "    IF letter = wanted THEN EXIT SUB\n"
        "  NEXT\n"
        "END SUB"
    )
    _, said = await run_script(source)
    assert said == ["a", "b", "c", "done"]


async def test_suggestions_attach_to_the_next_talk_only() -> None:
    host = FakeHost()
    conversation, _ = await run_script(
        'ADD SUGGESTION "Yes"\nADD SUGGESTION "No"\nADD SUGGESTION "Yes"\n'
        'TALK "Continue?"\nTALK "plain"\n'
        'ADD SUGGESTION "dropped"\nCLEAR SUGGESTIONS\nADD SUGGESTION "kept"\n'
        'HEAR x\nTALK "again"\nTALK "last"',
        host,
    )
    assert host.messages == [Message("Continue?", ["Yes", "No"]), Message("plain", [])]
    assert conversation.state is not None
    assert conversation.state["suggestions"] == ["kept"]  # still pending across the HEAR
    await conversation.say("hi")
    assert host.messages[2:] == [Message("again", ["kept"]), Message("last", [])]


async def test_memory_calls_reach_the_host() -> None:
    host = FakeHost(bot_memory={"visits": 4}, user_memory={"name": "Ann"})
    _, said = await run_script(
        'visits = GET BOT MEMORY("visits") + 1\n'
        'SET BOT MEMORY "visits", visits\n'
        'SET USER MEMORY "colours", ["red", "blue"]\n'
        'TALK GET USER MEMORY("name") & " " & visits & " " & GET USER MEMORY("missing") & "."',
        host,
    )
    assert said == ["Ann 5 ."]
    assert host.bot_memory == {"visits": 5}
    assert host.user_memory == {"name": "Ann", "colours": ["red", "blue"]}
    assert host.calls == [
        ("get_bot_memory", "visits"),
        ("set_bot_memory", ("visits", 5)),
        ("set_user_memory", ("colours", ["red", "blue"])),
        ("get_user_memory", "name"),
        ("get_user_memory", "missing"),
    ]


async def test_set_context_reaches_the_host() -> None:
    host = FakeHost()
    await run_script('SET CONTEXT "topic" AS "billing"\nSET CONTEXT "n" AS 1 + 1', host)
    assert host.context == {"topic": "billing", "n": 2}


async def test_wait_is_delegated_and_clamped() -> None:
    host = FakeHost()
    await run_script("WAIT 2\nWAIT 0.5\nWAIT -1\nWAIT 100000", host, limits=Limits())
    assert host.waits == [2.0, 0.5, 0.0, 60.0]
