"""Validation and conversion of answers to ``HEAR var AS type``.

:func:`check_answer` returns either the converted value or the polite text
the bot sends before asking again at the same HEAR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from .values import Value, parse_number

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d+)?|[.,]\d+)")
_YES = frozenset({"yes", "y", "true", "1", "sim", "s", "on"})
_NO = frozenset({"no", "n", "false", "0", "não", "nao", "off"})

RETRY_MESSAGES = {
    "INTEGER": "Please answer with a whole number.",
    "NUMBER": "Please answer with a number.",
    "BOOLEAN": "Please answer yes or no.",
    "DATE": "Please answer with a date like 2024-12-31 or 31/12/2024.",
    "EMAIL": "Please answer with a valid email address.",
}


@dataclass(frozen=True)
class Answer:
    ok: bool
    value: Value = None
    retry_message: str = ""


def _parse_date(text: str) -> date | None:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def check_answer(kind: str, choices: list[str], text: str) -> Answer:
    """Convert ``text`` for a HEAR of ``kind`` (``CHOICE`` uses ``choices``)."""
    answer = text.strip()
    if kind == "STRING" or (kind == "CHOICE" and not choices):
        return Answer(True, answer)
    if kind == "CHOICE":
        for choice in choices:
            if choice.strip().casefold() == answer.casefold():
                return Answer(True, choice)
        return Answer(False, retry_message="Please choose one of: " + ", ".join(choices))
    if kind == "INTEGER" and _INTEGER.fullmatch(answer):
        return Answer(True, int(answer))
    if kind == "NUMBER" and _NUMBER.fullmatch(answer):
        number = parse_number(answer.replace(",", "."))
        if number is not None:
            return Answer(True, number)
    if kind == "BOOLEAN":
        lowered = answer.casefold()
        if lowered in _YES:
            return Answer(True, True)
        if lowered in _NO:
            return Answer(True, False)
    if kind == "DATE":
        parsed = _parse_date(answer)
        if parsed is not None:
            return Answer(True, parsed.isoformat())
    if kind == "EMAIL" and _EMAIL.fullmatch(answer):
        return Answer(True, answer)
    return Answer(False, retry_message=RETRY_MESSAGES.get(kind, "Please answer again."))
