"""Exceptions raised while compiling or running a BASIC dialog.

Every error that can be pinned to a place in a script carries ``filename``,
``line`` and a human ``message``; ``str()`` renders them the way compilers do,
``start.bas:12: Unknown keyword FOO``, so the message can be shown to bot
authors as is.
"""

from __future__ import annotations


class BasicError(Exception):
    """Base class for errors located in a BASIC source file."""

    def __init__(self, filename: str, line: int, message: str) -> None:
        super().__init__(f"{filename}:{line}: {message}")
        self.filename = filename
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}: {self.message}"


class BasicSyntaxError(BasicError):
    """The source could not be parsed or compiled."""


class BasicRuntimeError(BasicError):
    """A script failed while running (type mismatch, division by zero, ...)."""


class LimitExceeded(BasicRuntimeError):
    """A script went over one of the configured :class:`Limits`."""


class StepBudgetExceeded(LimitExceeded):
    """A turn executed more instructions than ``Limits.max_steps``."""


class CallDepthExceeded(LimitExceeded):
    """SUB calls nested deeper than ``Limits.max_call_depth``."""


class DialogChanged(Exception):
    """A saved dialog state belongs to another version of the program.

    Raised by ``run_turn`` when the state's ``source_hash`` (or format
    version) does not match the program: the program counter would point at
    the wrong instruction, so the caller must restart the dialog instead.
    """

    def __init__(self, filename: str, expected_hash: str, found_hash: str | None) -> None:
        super().__init__(f"{filename}: the dialog was changed while a conversation was waiting")
        self.filename = filename
        self.expected_hash = expected_hash
        self.found_hash = found_hash


class ValueProblem(Exception):
    """Raised by value helpers and built-in functions; has no location yet.

    The VM converts it into a :class:`BasicRuntimeError` with the file and
    line of the instruction being executed.
    """


class HostProblem(ValueProblem):
    """A Host call failed in a way the bot author must hear about.

    Raised by hosts, for instance when the bot's LLM endpoint is not
    configured or does not answer; the VM reports it with the file and line
    of the instruction being executed, like any other runtime error.
    """


class SizeProblem(ValueProblem):
    """A value is larger than the limits allow; becomes :class:`LimitExceeded`."""
