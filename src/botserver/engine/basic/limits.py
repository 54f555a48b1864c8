"""Resource limits applied to every turn of a BASIC dialog."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Configurable safety limits for the interpreter.

    ``max_steps`` is counted per turn (from the start or a resumed HEAR until
    the next HEAR or the end), so a dialog may run for ever across turns but
    never hog the event loop within one. ``max_list_text_length`` bounds the
    characters held by the strings of one list, so that printing or storing
    a list stays cheap.
    """

    max_steps: int = 10_000
    max_call_depth: int = 64
    max_string_length: int = 64 * 1024
    max_list_length: int = 10_000
    max_list_text_length: int = 1024 * 1024
    max_wait_seconds: float = 60.0
    yield_every: int = 500
