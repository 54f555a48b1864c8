"""Compiled programs: a flat tuple of instructions with jump targets.

A :class:`Program` is immutable and holds no run-time state, so one compiled
program can serve every conversation. All control flow is explicit: blocks
compile to conditional and unconditional jumps to instruction indexes, which
is what makes a suspended dialog resumable from a plain program counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from . import ast


@dataclass(frozen=True)
class Instr:
    """Base class; ``line`` is the source line for error messages."""

    line: int


@dataclass(frozen=True)
class TalkI(Instr):
    expr: ast.Expr


@dataclass(frozen=True)
class TalkLlmI(Instr):
    """``TALK LLM(prompt)``: stream the model's answer to the user as it arrives."""

    prompt: ast.Expr


@dataclass(frozen=True)
class HearI(Instr):
    var: str
    kind: str
    choices: tuple[ast.Expr, ...]


@dataclass(frozen=True)
class WaitI(Instr):
    seconds: ast.Expr


@dataclass(frozen=True)
class AssignI(Instr):
    var: str
    expr: ast.Expr


@dataclass(frozen=True)
class JumpI(Instr):
    target: int


@dataclass(frozen=True)
class JumpIfFalseI(Instr):
    cond: ast.Expr
    target: int


@dataclass(frozen=True)
class ForInitI(Instr):
    """Evaluate start, end and step once; store end/step as loop state."""

    var: str
    start: ast.Expr
    end: ast.Expr
    step: ast.Expr | None
    loop_id: int


@dataclass(frozen=True)
class ForTestI(Instr):
    """Jump to ``exit_target`` when the counter went past the end."""

    var: str
    loop_id: int
    exit_target: int


@dataclass(frozen=True)
class ForStepI(Instr):
    """Add the step to the counter and jump back to the test."""

    var: str
    loop_id: int
    test_target: int


@dataclass(frozen=True)
class EachInitI(Instr):
    """Evaluate the list once and store it with a position as loop state."""

    iterable: ast.Expr
    loop_id: int


@dataclass(frozen=True)
class EachNextI(Instr):
    """Assign the next item or jump to ``exit_target`` when done."""

    var: str
    loop_id: int
    exit_target: int


@dataclass(frozen=True)
class LoopEndI(Instr):
    """Forget a loop's state (normal end or EXIT FOR)."""

    loop_id: int


@dataclass(frozen=True)
class CallI(Instr):
    sub: str
    args: tuple[ast.Expr, ...]


@dataclass(frozen=True)
class ReturnI(Instr):
    pass


@dataclass(frozen=True)
class AddSuggestionI(Instr):
    text: ast.Expr


@dataclass(frozen=True)
class ClearSuggestionsI(Instr):
    pass


@dataclass(frozen=True)
class SetContextI(Instr):
    name: ast.Expr
    value: ast.Expr


@dataclass(frozen=True)
class SetMemoryI(Instr):
    scope: str
    key: ast.Expr
    value: ast.Expr


@dataclass(frozen=True)
class EndI(Instr):
    pass


@dataclass(frozen=True)
class SubInfo:
    name: str
    params: tuple[str, ...]
    entry: int


@dataclass(frozen=True, eq=False)
class Program:
    """A compiled dialog. ``source_hash`` identifies the exact source text.

    Programs compare and hash by identity, so they can be cached and shared.
    """

    filename: str
    source_hash: str
    code: tuple[Instr, ...]
    subs: Mapping[str, SubInfo] = field(default_factory=lambda: MappingProxyType({}))

    def __repr__(self) -> str:
        return f"<Program {self.filename} {self.source_hash[:12]} {len(self.code)} instructions>"
