"""Operators, conversions and every built-in function."""

from __future__ import annotations

from typing import Any

import pytest

from botserver.engine.basic import BasicRuntimeError

from .host import evaluate, run_script


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # arithmetic keeps integers integral
        ("1 + 2", 3),
        ("7 - 10", -3),
        ("6 * 7", 42),
        ("6 / 3", 2),
        ("7 / 2", 3.5),
        ("7 MOD 3", 1),
        ("-7 MOD 3", -1),
        ("7.5 MOD 2", 1.5),
        ("2 ^ 10", 1024),
        ("2 ^ -1", 0.5),
        ("-2 ^ 2", -4),
        ("(1 + 2) * 3", 9),
        ("1 + 2 * 3", 7),
        ("0.1 + 0.2 > 0.3", True),
        # + concatenates as soon as one side is a string
        ('"n=" + 6', "n=6"),
        ('"n=" + 6.0', "n=6"),
        ('"n=" + 2.5', "n=2.5"),
        ('"a" + "b"', "ab"),
        ('"1" + "2"', "12"),
        ('"" + 5', 5),
        ("undefined + 1", 1),
        ('"x" & 1 & TRUE', "x1true"),
        ("1 & 2", "12"),
        ("[1, 2] + [3]", [1, 2, 3]),
        # comparisons
        ("1 = 1", True),
        ("1 <> 1", False),
        ('"Abc" = "aBC"', True),
        ('"abc" <> "ABD"', True),
        ('"apple" < "Banana"', True),
        ("2 < 10", True),
        ('"2" = 2', True),
        ('2 < "10"', True),
        ("3 >= 3", True),
        ("3 <= 2", False),
        ("4 > 3.5", True),
        ("TRUE = TRUE", True),
        ('TRUE = "true"', True),
        ("[1, 2] = [1, 2]", True),
        # logic
        ("TRUE AND FALSE", False),
        ("TRUE OR FALSE", True),
        ("NOT FALSE", True),
        ("NOT 1 = 2", True),
        ("1 < 2 AND 2 < 3", True),
        ('"" OR 0', False),
        ("undefined", ""),
    ],
)
async def test_operators(expression: str, expected: Any) -> None:
    result = await evaluate(expression)
    assert result == expected
    assert type(result) is type(expected)


async def test_variables_are_case_insensitive_and_unknown_ones_are_empty() -> None:
    _, said = await run_script('Name = "Ann"\nTALK NAME & "|" & nAmE & "|" & nobody & "|"')
    assert said == ["Ann|Ann||"]


async def test_and_or_short_circuit() -> None:
    _, said = await run_script(
        'x = FALSE AND GET BOT MEMORY("a")\ny = TRUE OR GET BOT MEMORY("b")\nTALK x & y'
    )
    assert said == ["falsetrue"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('LEN("hello")', 5),
        ("LEN([1, 2, 3])", 3),
        ("LEN(12345)", 5),
        ('UCASE("Olá")', "OLÁ"),
        ('LCASE("ABC")', "abc"),
        ('TRIM("  a b  ")', "a b"),
        ('LEFT("hello", 2)', "he"),
        ('LEFT("hi", 10)', "hi"),
        ('RIGHT("hello", 3)', "llo"),
        ('RIGHT("hello", 0)', ""),
        ('RIGHT("hi", 9)', "hi"),
        ('MID("hello", 2, 3)', "ell"),
        ('MID("hello", 3)', "llo"),
        ('INSTR("hello", "L")', 3),
        ('INSTR("hello", "z")', 0),
        ('INSTR(4, "hello", "l")', 4),
        ('REPLACE("a-b-c", "-", "+")', "a+b+c"),
        ('VAL("42")', 42),
        ('VAL(" 3.5 kg")', 3.5),
        ('VAL("abc")', 0),
        ("STR(7)", "7"),
        ("STR(2.50)", "2.5"),
        ("INT(3.9)", 3),
        ("INT(-3.1)", -4),
        ('INT("12")', 12),
        ("ROUND(2.5)", 3),
        ("ROUND(3.14159, 2)", 3.14),
        ("ROUND(-2.5)", -3),
        ('SPLIT("a,b,c")', ["a", "b", "c"]),
        ('SPLIT("a b", " ")', ["a", "b"]),
        ('SPLIT("", ",")', []),
        ('JOIN(["a", 1, 2.5], "-")', "a-1-2.5"),
        ('JOIN(SPLIT("x;y", ";"))', "x,y"),
        ('FORMAT(1234.5, "#,##0.00")', "1,234.50"),
        ('FORMAT(3.14159, "0.00")', "3.14"),
        ('FORMAT(2, "0.##")', "2"),
        ('FORMAT(7, "000")', "007"),
        ('FORMAT(0.25, "0%")', "25%"),
        ('FORMAT("2024-02-03", "dd/MM/yyyy")', "03/02/2024"),
        ('FORMAT("2024-02-03 09:07:05", "yyyy-MM-dd HH:mm:ss")', "2024-02-03 09:07:05"),
        ('FORMAT("2024-02-03 15:07:00", "h:mm tt")', "3:07 PM"),
        ('FORMAT("hello", "0.00")', "hello"),
        ("NOW()", "2024-05-17 14:05:09"),
        ("NOW", "2024-05-17 14:05:09"),
        ("TODAY()", "2024-05-17"),
        ('FORMAT(NOW(), "HH:mm")', "14:05"),
    ],
)
async def test_functions(expression: str, expected: Any) -> None:
    result = await evaluate(expression)
    assert result == expected
    assert type(result) is type(expected)


async def test_functions_are_case_insensitive() -> None:
    assert await evaluate('ucase("a") & Len("abc")') == "A3"


async def test_random() -> None:
    values = [await evaluate("RANDOM(1, 6)") for _ in range(40)]
    assert all(isinstance(v, int) and 1 <= v <= 6 for v in values)
    assert len(set(values)) > 1
    single = await evaluate("RANDOM(3)")
    assert single in (1, 2, 3)
    fraction = await evaluate("RANDOM()")
    assert isinstance(fraction, float) and 0 <= fraction < 1


async def test_numbers_print_without_trailing_zero() -> None:
    _, said = await run_script('TALK 6.0\nTALK 10 / 4\nTALK 1 / 3\nTALK [1, 2.0, "a"]')
    assert said == ["6", "2.5", "0.3333333333333333", "1, 2, a"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1 / 0", "start.bas:1: Division by zero"),
        ("x = 1 MOD 0", "start.bas:1: Division by zero"),
        ('TALK "a"\nx = "abc" * 2', 'start.bas:2: Expected a number but got "abc"'),
        ("x = 9 ^ 999999", "start.bas:1: Number out of range"),
        ("x = 10.0 ^ 400", "start.bas:1: Number out of range"),
        ('x = -"a"', 'start.bas:1: Expected a number but got "a"'),
        ("x = RANDOM(5, 1)", "start.bas:1: RANDOM range is empty (5 to 1)"),
        ("x = [[1]]", "start.bas:1: A list cannot contain another list"),
        ("FOR i = 1 TO 3 STEP 0\nNEXT", "start.bas:1: FOR STEP cannot be 0"),
        (
            'x = 2\nIF x = 1 THEN\nTALK "a"\nELSEIF "a" * 2 THEN\nTALK "b"\nEND IF',
            'start.bas:4: Expected a number but got "a"',
        ),
        (
            'x = 2\nSELECT CASE x\nCASE 1\nTALK "a"\nCASE 1 / 0\nTALK "b"\nEND SELECT',
            "start.bas:5: Division by zero",
        ),
    ],
)
async def test_runtime_errors_carry_file_and_line(source: str, message: str) -> None:
    with pytest.raises(BasicRuntimeError) as info:
        await run_script(source)
    assert str(info.value) == message
    assert info.value.filename == "start.bas"


async def test_integer_overflow_is_an_error_not_a_hang() -> None:
    with pytest.raises(BasicRuntimeError, match="Number out of range"):
        await run_script("x = 2\nWHILE TRUE\nx = x * x\nWEND")
