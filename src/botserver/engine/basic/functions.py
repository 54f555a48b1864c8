"""Built-in functions of the BASIC dialect.

Each built-in is a plain Python function over already evaluated argument
values. Arity is checked when the script is compiled, so the implementations
only deal with values. Positions (LEFT, MID, INSTR) are 1-based as in BASIC.
``INSTR`` ignores case (like the comparison operators); ``REPLACE`` is exact.
``RANDOM()`` is a float in [0, 1), ``RANDOM(n)`` an integer 1..n and
``RANDOM(a, b)`` an integer a..b. ``NOW()`` and ``TODAY()`` read the host's
clock and return ``YYYY-MM-DD HH:MM:SS`` / ``YYYY-MM-DD`` text, which
``FORMAT(date, "dd/MM/yyyy HH:mm")`` can reshape.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import SizeProblem, ValueProblem
from .limits import Limits
from .values import (
    Value,
    check_size,
    checked_number,
    is_number,
    parse_number,
    to_int,
    to_number,
    to_text,
)

_random = random.Random()


@dataclass(frozen=True)
class CallContext:
    """What built-ins may use besides their arguments."""

    clock: Callable[[], datetime]
    limits: Limits


Impl = Callable[[CallContext, list[Value]], Value]


@dataclass(frozen=True)
class Builtin:
    name: str
    min_args: int
    max_args: int
    impl: Impl


FUNCTIONS: dict[str, Builtin] = {}


def _builtin(name: str, min_args: int, max_args: int | None = None) -> Callable[[Impl], Impl]:
    def register(impl: Impl) -> Impl:
        top = min_args if max_args is None else max_args
        FUNCTIONS[name] = Builtin(name, min_args, top, impl)
        return impl

    return register


# -------------------------------------------------------------------- strings


@_builtin("LEN", 1)
def _len(ctx: CallContext, args: list[Value]) -> Value:
    value = args[0]
    return len(value) if isinstance(value, list) else len(to_text(value))


@_builtin("UCASE", 1)
def _ucase(ctx: CallContext, args: list[Value]) -> Value:
    return to_text(args[0]).upper()


@_builtin("LCASE", 1)
def _lcase(ctx: CallContext, args: list[Value]) -> Value:
    return to_text(args[0]).lower()


@_builtin("TRIM", 1)
def _trim(ctx: CallContext, args: list[Value]) -> Value:
    return to_text(args[0]).strip()


@_builtin("LEFT", 2)
def _left(ctx: CallContext, args: list[Value]) -> Value:
    return to_text(args[0])[: max(to_int(args[1]), 0)]


@_builtin("RIGHT", 2)
def _right(ctx: CallContext, args: list[Value]) -> Value:
    count = to_int(args[1])
    text = to_text(args[0])
    return text[len(text) - count :] if 0 < count < len(text) else (text if count > 0 else "")


@_builtin("MID", 2, 3)
def _mid(ctx: CallContext, args: list[Value]) -> Value:
    text = to_text(args[0])
    start = max(to_int(args[1]), 1) - 1
    if len(args) == 2:
        return text[start:]
    return text[start : start + max(to_int(args[2]), 0)]


@_builtin("INSTR", 2, 3)
def _instr(ctx: CallContext, args: list[Value]) -> Value:
    start = 1
    if len(args) == 3:
        start = max(to_int(args[0]), 1)
        args = args[1:]
    haystack, needle = to_text(args[0]).casefold(), to_text(args[1]).casefold()
    return haystack.find(needle, start - 1) + 1


@_builtin("REPLACE", 3)
def _replace(ctx: CallContext, args: list[Value]) -> Value:
    text, old, new = (to_text(arg) for arg in args)
    if old == "":
        return text
    # Check the size before building a huge string.
    growth = text.count(old) * (len(new) - len(old))
    if len(text) + growth > ctx.limits.max_string_length:
        raise SizeProblem(f"String longer than {ctx.limits.max_string_length} characters")
    return text.replace(old, new)


@_builtin("SPLIT", 1, 2)
def _split(ctx: CallContext, args: list[Value]) -> Value:
    text = to_text(args[0])
    sep = to_text(args[1]) if len(args) == 2 else ","
    if text == "":
        return []
    parts = list(text) if sep == "" else text.split(sep)
    return check_size(parts, ctx.limits)


@_builtin("JOIN", 1, 2)
def _join(ctx: CallContext, args: list[Value]) -> Value:
    items = args[0] if isinstance(args[0], list) else [args[0]]
    sep = to_text(args[1]) if len(args) == 2 else ","
    texts = [to_text(item) for item in items]
    if sum(map(len, texts)) + len(sep) * len(texts) > ctx.limits.max_string_length:
        raise SizeProblem(f"String longer than {ctx.limits.max_string_length} characters")
    return sep.join(texts)


# -------------------------------------------------------------------- numbers

_LEADING_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)")


@_builtin("VAL", 1)
def _val(ctx: CallContext, args: list[Value]) -> Value:
    if is_number(args[0]):
        return args[0]
    match = _LEADING_NUMBER.match(to_text(args[0]))
    if not match:
        return 0
    number = parse_number(match.group(0))
    return 0 if number is None else number


@_builtin("STR", 1)
def _str(ctx: CallContext, args: list[Value]) -> Value:
    return to_text(args[0])


@_builtin("INT", 1)
def _int(ctx: CallContext, args: list[Value]) -> Value:
    return checked_number(to_int(args[0]))


@_builtin("ROUND", 1, 2)
def _round(ctx: CallContext, args: list[Value]) -> Value:
    number = to_number(args[0])
    digits = to_int(args[1]) if len(args) == 2 else 0
    try:
        quantum = Decimal(1).scaleb(-digits)
        rounded = Decimal(repr(number)).quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise ValueProblem("Number out of range") from exc
    return checked_number(int(rounded) if digits <= 0 else float(rounded))


@_builtin("RANDOM", 0, 2)
def _random_fn(ctx: CallContext, args: list[Value]) -> Value:
    if not args:
        return _random.random()
    low, high = (1, to_int(args[0])) if len(args) == 1 else (to_int(args[0]), to_int(args[1]))
    if low > high:
        raise ValueProblem(f"RANDOM range is empty ({low} to {high})")
    return _random.randint(low, high)


# ----------------------------------------------------------------- date/time


@_builtin("NOW", 0)
def _now(ctx: CallContext, args: list[Value]) -> Value:
    return ctx.clock().strftime("%Y-%m-%d %H:%M:%S")


@_builtin("TODAY", 0)
def _today(ctx: CallContext, args: list[Value]) -> Value:
    return ctx.clock().strftime("%Y-%m-%d")


_NUMBER_PATTERN = re.compile(r"[#0,]*(\.[#0]*)?%?")
_DATE_TOKENS = re.compile(r"yyyy|yy|MMMM|MMM|MM|M|dd|d|HH|H|hh|h|mm|m|ss|s|tt")


def _parse_date(text: str) -> datetime | None:
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _format_number(number: float, pattern: str) -> str:
    percent = pattern.endswith("%")
    if percent:
        number *= 100
        pattern = pattern[:-1]
    whole, _, fraction = pattern.partition(".")
    text = f"{number:{',' if ',' in whole else ''}.{len(fraction)}f}"
    minimum = fraction.count("0")
    if len(fraction) > minimum and "." in text:
        head, _, tail = text.partition(".")
        tail = tail.rstrip("0").ljust(minimum, "0")
        text = f"{head}.{tail}" if tail else head
    digits = whole.count("0")
    if digits > 1:
        sign = "-" if text.startswith("-") else ""
        body = text.lstrip("-")
        head, dot, tail = body.partition(".")
        text = sign + head.zfill(digits) + dot + tail
    return text + ("%" if percent else "")


def _format_date(moment: datetime, pattern: str) -> str:
    def token(match: re.Match[str]) -> str:
        tok = match.group(0)
        values = {
            "yyyy": f"{moment.year:04d}",
            "yy": f"{moment.year % 100:02d}",
            "MMMM": moment.strftime("%B"),
            "MMM": moment.strftime("%b"),
            "MM": f"{moment.month:02d}",
            "M": str(moment.month),
            "dd": f"{moment.day:02d}",
            "d": str(moment.day),
            "HH": f"{moment.hour:02d}",
            "H": str(moment.hour),
            "hh": f"{(moment.hour % 12) or 12:02d}",
            "h": str((moment.hour % 12) or 12),
            "mm": f"{moment.minute:02d}",
            "m": str(moment.minute),
            "ss": f"{moment.second:02d}",
            "s": str(moment.second),
            "tt": "AM" if moment.hour < 12 else "PM",
        }
        return values[tok]

    return _DATE_TOKENS.sub(token, pattern)


@_builtin("FORMAT", 2)
def _format(ctx: CallContext, args: list[Value]) -> Value:
    """FORMAT(number, "#,##0.00") or FORMAT(date text, "dd/MM/yyyy")."""
    value, pattern = args[0], to_text(args[1])
    number = value if is_number(value) else None
    if number is None and isinstance(value, str):
        number = parse_number(value)
    if number is not None and pattern and _NUMBER_PATTERN.fullmatch(pattern):
        return _format_number(float(number), pattern)
    if isinstance(value, str):
        moment = _parse_date(value)
        if moment is not None:
            return _format_date(moment, pattern)
    return to_text(value)
