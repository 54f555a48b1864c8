"""Abstract syntax tree of the BASIC dialect.

Expressions are plain frozen dataclasses evaluated recursively by the VM.
Statements form a nested tree (``If`` holds its branches, ``For`` its body);
the compiler flattens them into jump-based instructions. Every statement
remembers its source ``line`` for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Expr:
    """Base class of expressions."""


@dataclass(frozen=True)
class Literal(Expr):
    value: Any


@dataclass(frozen=True)
class Var(Expr):
    name: str  # always lower case


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Interpolation(Expr):
    """A string literal containing ``${name}`` placeholders."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary(Expr):
    op: str  # "-" or "NOT"
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    op: str  # + - * / MOD ^ & = <> < > <= >= AND OR
    left: Expr
    right: Expr


@dataclass(frozen=True)
class FuncCall(Expr):
    name: str  # upper case
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class MemoryGet(Expr):
    scope: str  # "bot" or "user"
    key: Expr


@dataclass(frozen=True)
class LlmCall(Expr):
    """``LLM(prompt)``: the whole answer of the bot's language model, as text."""

    prompt: Expr


@dataclass(frozen=True)
class CaseMatch(Expr):
    """True when ``subject`` equals any of ``values`` (used by SELECT CASE)."""

    subject: Expr
    values: tuple[Expr, ...]


# ----------------------------------------------------------------- statements


@dataclass(frozen=True)
class Stmt:
    line: int


@dataclass(frozen=True)
class Talk(Stmt):
    expr: Expr


@dataclass(frozen=True)
class Hear(Stmt):
    var: str
    kind: str  # STRING, INTEGER, NUMBER, BOOLEAN, DATE, EMAIL or CHOICE
    choices: tuple[Expr, ...] = ()


@dataclass(frozen=True)
class Wait(Stmt):
    seconds: Expr


@dataclass(frozen=True)
class Assign(Stmt):
    var: str
    expr: Expr


@dataclass(frozen=True)
class Branch:
    """One ``IF`` or ``ELSEIF`` condition with its body; ``line`` is the condition's."""

    line: int
    cond: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class If(Stmt):
    branches: tuple[Branch, ...]
    else_body: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class For(Stmt):
    var: str
    start: Expr
    end: Expr
    step: Expr | None
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class ForEach(Stmt):
    var: str
    iterable: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class While(Stmt):
    cond: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class CaseBranch:
    """One ``CASE`` with its values and body; ``line`` is the ``CASE`` line."""

    line: int
    values: tuple[Expr, ...]
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class Select(Stmt):
    subject: Expr
    cases: tuple[CaseBranch, ...]
    else_body: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class CallSub(Stmt):
    name: str  # lower case
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class ExitFor(Stmt):
    pass


@dataclass(frozen=True)
class ExitSub(Stmt):
    pass


@dataclass(frozen=True)
class AddSuggestion(Stmt):
    text: Expr


@dataclass(frozen=True)
class ClearSuggestions(Stmt):
    pass


@dataclass(frozen=True)
class SetContext(Stmt):
    name: Expr
    value: Expr


@dataclass(frozen=True)
class SetMemory(Stmt):
    scope: str  # "bot" or "user"
    key: Expr
    value: Expr


@dataclass(frozen=True)
class SubDef:
    name: str  # lower case
    params: tuple[str, ...]
    body: tuple[Stmt, ...]
    line: int


@dataclass(frozen=True)
class Module:
    """A parsed file: the main flow plus its SUB definitions."""

    body: tuple[Stmt, ...]
    subs: dict[str, SubDef] = field(default_factory=dict)
    last_line: int = 1
