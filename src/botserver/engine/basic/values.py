"""Values of the BASIC dialect and the operators on them.

Values are plain JSON types so that the whole VM state can be serialised:
``str``, ``int``, ``float``, ``bool``, ``list`` (and whatever JSON a host
returns from memory, e.g. ``dict`` or ``None``, which behave as text).

Rules chosen for bot authors (documented in the package README):

* An unknown variable reads as the empty string ``""`` (like General Bots).
* ``+`` adds numbers and concatenates as soon as one side is a string
  (``"n=" + 6`` is ``"n=6"``); the empty string counts as ``0`` next to a
  number, so ``count = count + 1`` works on a never-set variable.
  ``&`` always concatenates. ``+`` on two lists joins them.
* Integers stay integers: ``/`` returns an ``int`` when the division is exact,
  and whole floats print without ``.0``.
* String comparison (``=``, ``<>``, ``<`` ...) ignores case. A number compared
  with a string that looks like a number compares numerically.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import SizeProblem, ValueProblem
from .limits import Limits

Value = Any

_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_MAX_INT = 2**63


def is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_number(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def to_text(value: Value) -> str:
    """The text shown to users for a value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, list):
        return ", ".join(to_text(item) for item in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def parse_number(text: str) -> int | float | None:
    """Parse a whole string as a number, or return None."""
    text = text.strip()
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    return None


def to_number(value: Value) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if value is None or value == "":
        return 0
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None:
            return number
    raise ValueProblem(f"Expected a number but got {quote(value)}")


def to_int(value: Value) -> int:
    number = to_number(value)
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueProblem("Number out of range")
        return math.floor(number)
    return number


def quote(value: Value) -> str:
    text = to_text(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f'"{text}"' if isinstance(value, str) else text


def truthy(value: Value) -> bool:
    """Truth of a condition: FALSE, 0, "" and empty lists are false."""
    if isinstance(value, str):
        return value != "" and value.strip().lower() != "false"
    return bool(value)


def checked_number(value: int | float) -> int | float:
    """Reject numbers that cannot be stored (huge integers, inf, NaN)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueProblem("Number out of range")
    elif abs(value) > _MAX_INT:
        raise ValueProblem("Number out of range")
    return value


def check_size(value: Value, limits: Limits) -> Value:
    """Raise :class:`SizeProblem` when a string or list is over the limits.

    For lists this also bounds the total text they hold, so that printing or
    storing a list can never produce something huge.
    """
    if isinstance(value, str) and len(value) > limits.max_string_length:
        raise SizeProblem(f"String longer than {limits.max_string_length} characters")
    if isinstance(value, list):
        if len(value) > limits.max_list_length:
            raise SizeProblem(f"List longer than {limits.max_list_length} items")
        total = sum(len(item) for item in value if isinstance(item, str))
        if total > limits.max_list_text_length:
            raise SizeProblem(f"List holds more than {limits.max_list_text_length} characters")
    return value


def check_text(value: Value, limits: Limits) -> Value:
    """The cheap part of :func:`check_size`: only the length of strings."""
    if isinstance(value, str) and len(value) > limits.max_string_length:
        raise SizeProblem(f"String longer than {limits.max_string_length} characters")
    return value


def _numeric_pair(a: Value, b: Value) -> tuple[int | float, int | float] | None:
    """Both sides as numbers when one is a number and the other number-like."""
    if not (is_number(a) or is_number(b)):
        return None
    left = a if is_number(a) else parse_number(a) if isinstance(a, str) else None
    right = b if is_number(b) else parse_number(b) if isinstance(b, str) else None
    if left is None or right is None:
        return None
    return left, right


def equals(a: Value, b: Value) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) and isinstance(b, bool):
        return a == b
    pair = _numeric_pair(a, b)
    if pair is not None:
        return pair[0] == pair[1]
    return to_text(a).casefold() == to_text(b).casefold()


def compare(a: Value, b: Value) -> int:
    """-1, 0 or 1; numbers numerically, anything else as case-insensitive text."""
    pair = _numeric_pair(a, b)
    if pair is not None:
        return (pair[0] > pair[1]) - (pair[0] < pair[1])
    left, right = to_text(a).casefold(), to_text(b).casefold()
    return (left > right) - (left < right)


def add(a: Value, b: Value) -> Value:
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    if a == "" and is_number(b):
        return b
    if b == "" and is_number(a):
        return a
    if isinstance(a, str) or isinstance(b, str) or isinstance(a, list) or isinstance(b, list):
        return to_text(a) + to_text(b)
    return checked_number(to_number(a) + to_number(b))


def arithmetic(op: str, a: Value, b: Value) -> int | float:
    """The numeric operators ``- * / MOD ^``."""
    x, y = to_number(a), to_number(b)
    if op == "-":
        return checked_number(x - y)
    if op == "*":
        return checked_number(x * y)
    if op == "/":
        if y == 0:
            raise ValueProblem("Division by zero")
        if isinstance(x, int) and isinstance(y, int) and x % y == 0:
            return x // y
        return checked_number(x / y)
    if op == "MOD":
        if y == 0:
            raise ValueProblem("Division by zero")
        if isinstance(x, int) and isinstance(y, int):
            rest = abs(x) % abs(y)
            return -rest if x < 0 else rest
        return checked_number(math.fmod(x, y))
    if op == "^":
        return power(x, y)
    raise ValueProblem(f"Unknown operator {op}")  # pragma: no cover


def power(x: int | float, y: int | float) -> int | float:
    if isinstance(x, int) and isinstance(y, int) and y >= 0:
        # Estimate the size first: 9 ^ 999999999 must not freeze the server.
        if x in (0, 1, -1) or abs(x).bit_length() * y <= 64:
            return checked_number(x**y)
        raise ValueProblem("Number out of range")
    try:
        result = float(x) ** float(y)
    except (OverflowError, ZeroDivisionError) as exc:
        raise ValueProblem("Number out of range") from exc
    if isinstance(result, complex):
        raise ValueProblem("Number out of range")
    return checked_number(result)


def negate(value: Value) -> int | float:
    return checked_number(-to_number(value))
