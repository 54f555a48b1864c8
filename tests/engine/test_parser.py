"""Parsing: every statement form, comments, case-insensitivity, syntax errors."""

from __future__ import annotations

import pytest

from botserver.engine.basic import BasicSyntaxError, compile_source
from botserver.engine.basic import ast as A
from botserver.engine.basic.parser import parse_source


def body(source: str) -> tuple[A.Stmt, ...]:
    return parse_source(source, "start.bas").body


def test_comments_and_blank_lines_are_ignored() -> None:
    stmts = body("REM a comment\n\n' another one\nTALK \"hi\" ' trailing\nrem lower case\n")
    assert stmts == (A.Talk(4, A.Literal("hi")),)


def test_keywords_and_variables_are_case_insensitive() -> None:
    stmts = body('talk "a"\nTaLk UserName\nSET Total = 1\ntotal = 2\n')
    assert stmts[0] == A.Talk(1, A.Literal("a"))
    assert stmts[1] == A.Talk(2, A.Var("username"))
    assert stmts[2] == A.Assign(3, "total", A.Literal(1))
    assert stmts[3] == A.Assign(4, "total", A.Literal(2))


def test_names_that_start_with_keywords_are_names() -> None:
    stmts = body("total = 1\nnext_step = total\nifx = 2\nremember = 3\n")
    assert [s.var for s in stmts if isinstance(s, A.Assign)] == [
        "total",
        "next_step",
        "ifx",
        "remember",
    ]


def test_literals() -> None:
    (stmt,) = body('x = [1, 2.5, "a ""quoted"" b", TRUE, false]')
    assert isinstance(stmt, A.Assign)
    assert stmt.expr == A.ListExpr(
        (A.Literal(1), A.Literal(2.5), A.Literal('a "quoted" b'), A.Literal(True), A.Literal(False))
    )


def test_interpolation_in_strings() -> None:
    (stmt,) = body('TALK "Hi ${Name}, you owe ${ amount }!"')
    assert stmt == A.Talk(
        1,
        A.Interpolation(
            (
                A.Literal("Hi "),
                A.Var("name"),
                A.Literal(", you owe "),
                A.Var("amount"),
                A.Literal("!"),
            )
        ),
    )


def test_operator_precedence() -> None:
    (stmt,) = body('x = 1 + 2 * 3 ^ 2 & "!" = y OR NOT a AND b')
    assert isinstance(stmt, A.Assign)
    power = A.Binary("^", A.Literal(3), A.Literal(2))
    arith = A.Binary("+", A.Literal(1), A.Binary("*", A.Literal(2), power))
    comparison = A.Binary("=", A.Binary("&", arith, A.Literal("!")), A.Var("y"))
    right = A.Binary("AND", A.Unary("NOT", A.Var("a")), A.Var("b"))
    assert stmt.expr == A.Binary("OR", comparison, right)


def test_unary_minus_binds_looser_than_power() -> None:
    (stmt,) = body("x = -2 ^ 2 - -y MOD 3")
    assert isinstance(stmt, A.Assign)
    assert stmt.expr == A.Binary(
        "-",
        A.Unary("-", A.Binary("^", A.Literal(2), A.Literal(2))),
        A.Binary("MOD", A.Unary("-", A.Var("y")), A.Literal(3)),
    )


def test_comparison_operators() -> None:
    ops = []
    for op in ["=", "<>", "<", ">", "<=", ">="]:
        (stmt,) = body(f"x = a {op} b")
        assert isinstance(stmt, A.Assign) and isinstance(stmt.expr, A.Binary)
        ops.append(stmt.expr.op)
    assert ops == ["=", "<>", "<", ">", "<=", ">="]


def test_dialogue_statements() -> None:
    stmts = body(
        'TALK "hi"\nHEAR a\nHEAR b AS integer\nHEAR c AS "x", "y"\nHEAR d AS options\nWAIT 2\n'
    )
    assert stmts == (
        A.Talk(1, A.Literal("hi")),
        A.Hear(2, "a", "STRING"),
        A.Hear(3, "b", "INTEGER"),
        A.Hear(4, "c", "CHOICE", (A.Literal("x"), A.Literal("y"))),
        A.Hear(5, "d", "CHOICE", (A.Var("options"),)),
        A.Wait(6, A.Literal(2)),
    )


@pytest.mark.parametrize("kind", ["STRING", "INTEGER", "NUMBER", "BOOLEAN", "DATE", "EMAIL"])
def test_hear_types(kind: str) -> None:
    assert body(f"HEAR v AS {kind.lower()}") == (A.Hear(1, "v", kind),)


def test_bot_feature_statements() -> None:
    stmts = body(
        'ADD SUGGESTION "a"\nCLEAR SUGGESTIONS\nSET CONTEXT "topic" AS t\n'
        'SET BOT MEMORY "k", 1\nSET USER MEMORY "u", 2\n'
        'x = GET BOT MEMORY("k")\ny = get user memory("u")\n'
    )
    assert stmts == (
        A.AddSuggestion(1, A.Literal("a")),
        A.ClearSuggestions(2),
        A.SetContext(3, A.Literal("topic"), A.Var("t")),
        A.SetMemory(4, "bot", A.Literal("k"), A.Literal(1)),
        A.SetMemory(5, "user", A.Literal("u"), A.Literal(2)),
        A.Assign(6, "x", A.MemoryGet("bot", A.Literal("k"))),
        A.Assign(7, "y", A.MemoryGet("user", A.Literal("u"))),
    )


def test_if_blocks_nest() -> None:
    (stmt,) = body(
        "IF a THEN\n  TALK 1\nELSEIF b THEN\n  TALK 2\nELSE IF c THEN\n  TALK 3\nELSE\n"
        "  IF d THEN TALK 4 ELSE TALK 5\nEND IF\n"
    )
    assert isinstance(stmt, A.If)
    assert [(b.line, b.cond) for b in stmt.branches] == [
        (1, A.Var("a")),
        (3, A.Var("b")),
        (5, A.Var("c")),
    ]
    assert stmt.branches[1].body == (A.Talk(4, A.Literal(2)),)
    assert stmt.else_body == (
        A.If(8, (A.Branch(8, A.Var("d"), (A.Talk(8, A.Literal(4)),)),), (A.Talk(8, A.Literal(5)),)),
    )


def test_loops() -> None:
    stmts = body(
        "FOR i = 1 TO 10 STEP 2\nNEXT i\nFOR EACH item IN items\nEXIT FOR\nNEXT\n"
        "WHILE x < 3\nWEND\nWHILE TRUE\nEND WHILE\n"
    )
    assert stmts[0] == A.For(1, "i", A.Literal(1), A.Literal(10), A.Literal(2), ())
    assert stmts[1] == A.ForEach(3, "item", A.Var("items"), (A.ExitFor(4),))
    assert isinstance(stmts[2], A.While) and isinstance(stmts[3], A.While)


def test_select_case() -> None:
    (stmt,) = body('SELECT CASE x\nCASE 1, 2\nTALK "a"\nCASE "b"\nCASE ELSE\nTALK "c"\nEND SELECT')
    assert isinstance(stmt, A.Select)
    assert [(case.line, case.values) for case in stmt.cases] == [
        (2, (A.Literal(1), A.Literal(2))),
        (4, (A.Literal("b"),)),
    ]
    assert stmt.else_body == (A.Talk(6, A.Literal("c")),)


def test_subs_can_stand_anywhere_and_are_not_part_of_the_main_flow() -> None:
    module = parse_source(
        'SUB first\nTALK "1"\nEND SUB\nCALL first\nCALL second(1, "a")\n'
        "SUB Second(a, B)\nEXIT SUB\nEND SUB\n",
        "start.bas",
    )
    assert module.body == (
        A.CallSub(4, "first", ()),
        A.CallSub(5, "second", (A.Literal(1), A.Literal("a"))),
    )
    assert module.subs["second"] == A.SubDef("second", ("a", "b"), (A.ExitSub(7),), 6)


def test_now_and_today_work_without_parentheses() -> None:
    stmts = body("a = NOW\nb = today()")
    assert stmts == (
        A.Assign(1, "a", A.FuncCall("NOW", ())),
        A.Assign(2, "b", A.FuncCall("TODAY", ())),
    )


def test_program_has_filename_and_stable_source_hash() -> None:
    first = compile_source('TALK "a"', "start.bas")
    again = compile_source('TALK "a"', "start.bas")
    other = compile_source('TALK "b"', "start.bas")
    assert first.filename == "start.bas"
    assert first.source_hash == again.source_hash != other.source_hash
    assert len(first.source_hash) == 64


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('TALK "a"\nFOO "x"', "start.bas:2: Unknown keyword FOO"),
        ("greet(1)", "start.bas:1: Unknown keyword greet (use CALL greet(...) to call a SUB)"),
        ("IF x THEN\nTALK 1\n", "start.bas:2: Expected END IF"),
        ("IF x = 1\nEND IF", "start.bas:1: Expected THEN but found end of line"),
        ("FOR i = 1 TO 3\nTALK i\n\n", "start.bas:3: Expected NEXT"),
        ("WHILE TRUE\n", "start.bas:1: Expected WEND"),
        ("SUB a\nTALK 1", "start.bas:2: Expected END SUB"),
        ("SELECT CASE x\nCASE 1\n", "start.bas:2: Expected END SELECT"),
        ("NEXT", "start.bas:1: NEXT without FOR"),
        ("END IF", "start.bas:1: END IF without IF"),
        ("ELSE", "start.bas:1: ELSE without IF"),
        ("WEND", "start.bas:1: WEND without WHILE"),
        ("CASE 1", "start.bas:1: CASE without SELECT CASE"),
        ("END SUB", "start.bas:1: END SUB without SUB"),
        ("FOR i = 1 TO 2\nIF x THEN\nNEXT", "start.bas:3: Expected END IF before NEXT"),
        ("FOR i = 1 TO 2\nNEXT j", "start.bas:2: NEXT j does not match FOR i"),
        ("SELECT CASE x\nTALK 1\nEND SELECT", "start.bas:2: Expected CASE after SELECT CASE"),
        ("IF a THEN\nELSE\nELSE\nEND IF", "start.bas:3: Duplicate ELSE"),
        ("IF a THEN\nSUB b\nEND SUB\nEND IF", "start.bas:2: Expected END IF before SUB"),
        ("SUB a\nEND SUB\nSUB A\nEND SUB", "start.bas:3: SUB a is already defined"),
        ("x = LEN(1, 2)", "start.bas:1: LEN expects 1 argument, got 2"),
        ("x = MID()", "start.bas:1: MID expects 2 to 3 arguments, got 0"),
        ("x = SHOUT(1)", "start.bas:1: Unknown function SHOUT"),
        ("CALL nowhere", "start.bas:1: Unknown SUB nowhere"),
        ("CALL a(1)\nSUB a(x, y)\nEND SUB", "start.bas:1: SUB a expects 2 arguments, got 1"),
        ("EXIT FOR", "start.bas:1: EXIT FOR outside FOR"),
        ("EXIT SUB", "start.bas:1: EXIT SUB outside SUB"),
        ("x = 1 $", 'start.bas:1: Unexpected character "$"'),
        ("TALK", "start.bas:1: Expected a value but found end of line"),
        ('TALK "a"\nx = 1 +', "start.bas:2: Expected a value but found end of line"),
        ("FOR EACH x", "start.bas:1: Expected IN but found end of line"),
        ("TALK 1 2", 'start.bas:1: Unexpected "2"'),
        ('TALK "open', "start.bas:1: Unterminated string (missing closing quote)"),
        ("x = (1 + 2", 'start.bas:1: Expected ")" but found end of line'),
    ],
)
def test_syntax_errors_carry_file_and_line(source: str, expected: str) -> None:
    with pytest.raises(BasicSyntaxError) as info:
        compile_source(source, "start.bas")
    assert str(info.value) == expected
    assert info.value.filename == "start.bas"
    assert info.value.line == int(expected.split(":")[1])


def test_windows_line_endings() -> None:
    assert body('TALK "a"\r\nTALK "b"\r\n') == (
        A.Talk(1, A.Literal("a")),
        A.Talk(2, A.Literal("b")),
    )
