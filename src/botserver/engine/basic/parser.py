"""Parse BASIC source text into an :class:`~.ast.Module`.

Lark (LALR, contextual lexer) parses the whole file with the flat grammar in
``grammar.lark``; :class:`_ToAst` turns each line into either an AST
statement or a block marker, and :func:`blocks.build_module` nests them.
Lark errors are translated into :class:`BasicSyntaxError` with a message a
bot author can act on.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import PatternStr

from . import ast, blocks
from .errors import BasicSyntaxError
from .functions import FUNCTIONS

HEAR_TYPES = frozenset({"STRING", "INTEGER", "NUMBER", "BOOLEAN", "DATE", "EMAIL"})

# First words that can start a statement; anything else followed by something
# other than "=" is reported as an unknown keyword.
STATEMENT_WORDS = frozenset(
    {"TALK", "HEAR", "WAIT", "SET", "IF", "ELSEIF", "ELSE", "END", "FOR", "NEXT", "WHILE"}
    | {"WEND", "SELECT", "CASE", "SUB", "CALL", "EXIT", "ADD", "CLEAR", "REM"}
)

_INTERPOLATION = re.compile(r"\$\{\s*([^\W\d]\w*)\s*\}")
_FIRST_WORD = re.compile(r"\s*([^\W\d]\w*)\s*(.?)")


class _SyntaxProblem(Exception):
    """Raised inside the transformer; carries the line of the offending token."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _string_literal(token: Token) -> ast.Expr:
    text = token.value[1:-1].replace('""', '"')
    parts: list[ast.Expr] = []
    position = 0
    for match in _INTERPOLATION.finditer(text):
        if match.start() > position:
            parts.append(ast.Literal(text[position : match.start()]))
        parts.append(ast.Var(match.group(1).lower()))
        position = match.end()
    if not parts:
        return ast.Literal(text)
    if position < len(text):
        parts.append(ast.Literal(text[position:]))
    return ast.Interpolation(tuple(parts))


def _binary(op: str) -> Any:
    def build(self: _ToAst, left: ast.Expr, right: ast.Expr) -> ast.Expr:
        return ast.Binary(op, left, right)

    return v_args(inline=True)(build)


class _ToAst(Transformer_NonRecursive):
    """Lark tree → statements and block markers (one per source line).

    The non-recursive transformer copes with very long expressions such as
    ``1 + 1 + ... + 1`` without hitting Python's recursion limit.
    """

    # ------------------------------------------------------------ expressions
    @v_args(inline=True)
    def number(self, token: Token) -> ast.Expr:
        text = token.value
        return ast.Literal(float(text) if "." in text else int(text))

    @v_args(inline=True)
    def string(self, token: Token) -> ast.Expr:
        return _string_literal(token)

    def true(self, children: list[Any]) -> ast.Expr:
        return ast.Literal(True)

    def false(self, children: list[Any]) -> ast.Expr:
        return ast.Literal(False)

    @v_args(inline=True)
    def var(self, token: Token) -> ast.Expr:
        name = token.value.lower()
        if name in ("now", "today"):  # allowed without parentheses
            return ast.FuncCall(name.upper(), ())
        return ast.Var(name)

    def list_literal(self, items: list[ast.Expr]) -> ast.Expr:
        return ast.ListExpr(tuple(items))

    def func(self, children: list[Any]) -> ast.Expr:
        token, *args = children
        name = token.value.upper()
        if name == "LLM":  # not a built-in: it goes through the Host
            if len(args) != 1:
                raise _SyntaxProblem(token.line, f"LLM expects 1 argument, got {len(args)}")
            return ast.LlmCall(args[0])
        builtin = FUNCTIONS.get(name)
        if builtin is None:
            raise _SyntaxProblem(token.line, f"Unknown function {token.value}")
        if not builtin.min_args <= len(args) <= builtin.max_args:
            if builtin.min_args == builtin.max_args:
                expected = str(builtin.min_args)
            else:
                expected = f"{builtin.min_args} to {builtin.max_args}"
            plural = "" if expected == "1" else "s"
            raise _SyntaxProblem(
                token.line, f"{name} expects {expected} argument{plural}, got {len(args)}"
            )
        return ast.FuncCall(name, tuple(args))

    @v_args(inline=True)
    def get_bot_memory(self, key: ast.Expr) -> ast.Expr:
        return ast.MemoryGet("bot", key)

    @v_args(inline=True)
    def get_user_memory(self, key: ast.Expr) -> ast.Expr:
        return ast.MemoryGet("user", key)

    @v_args(inline=True)
    def neg(self, operand: ast.Expr) -> ast.Expr:
        if isinstance(operand, ast.Literal) and isinstance(operand.value, int | float):
            return ast.Literal(-operand.value)
        return ast.Unary("-", operand)

    @v_args(inline=True)
    def not_op(self, operand: ast.Expr) -> ast.Expr:
        return ast.Unary("NOT", operand)

    @v_args(inline=True)
    def compare(self, left: ast.Expr, op: Any, right: ast.Expr) -> ast.Expr:
        return ast.Binary(str(op.children[0]), left, right)

    or_op = _binary("OR")
    and_op = _binary("AND")
    concat = _binary("&")
    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    mod = _binary("MOD")
    pow = _binary("^")

    # ------------------------------------------------------------- statements
    def start(self, items: list[blocks.Item]) -> list[blocks.Item]:
        return items

    @v_args(meta=True)
    def talk(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.Talk(meta.line, children[0])

    @v_args(meta=True)
    def hear(self, meta: Any, children: list[Any]) -> blocks.Item:
        token, *choices = children
        if not choices:
            return ast.Hear(meta.line, token.value.lower(), "STRING")
        if len(choices) == 1 and isinstance(choices[0], ast.Var):
            kind = choices[0].name.upper()
            if kind in HEAR_TYPES:
                return ast.Hear(meta.line, token.value.lower(), kind)
        return ast.Hear(meta.line, token.value.lower(), "CHOICE", tuple(choices))

    @v_args(meta=True)
    def wait(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.Wait(meta.line, children[0])

    @v_args(meta=True)
    def assign(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.Assign(meta.line, children[0].value.lower(), children[1])

    set_assign = assign

    @v_args(meta=True)
    def if_start(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.IfStart(meta.line, children[0])

    @v_args(meta=True)
    def if_line(self, meta: Any, children: list[Any]) -> blocks.Item:
        cond, then, *otherwise = children
        return ast.If(meta.line, (ast.Branch(meta.line, cond, (then,)),), tuple(otherwise))

    @v_args(meta=True)
    def elseif(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.ElseIf(meta.line, children[0])

    @v_args(meta=True)
    def else_(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.Else(meta.line)

    @v_args(meta=True)
    def end_if(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.EndIf(meta.line)

    @v_args(meta=True)
    def for_start(self, meta: Any, children: list[Any]) -> blocks.Item:
        token, start, end, *step = children
        return blocks.ForStart(
            meta.line, token.value.lower(), start, end, step[0] if step else None
        )

    @v_args(meta=True)
    def for_each(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.ForEachStart(meta.line, children[0].value.lower(), children[1])

    @v_args(meta=True)
    def next(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.Next(meta.line, children[0].value.lower() if children else None)

    @v_args(meta=True)
    def while_start(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.WhileStart(meta.line, children[0])

    @v_args(meta=True)
    def wend(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.Wend(meta.line)

    @v_args(meta=True)
    def select_start(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.SelectStart(meta.line, children[0])

    @v_args(meta=True)
    def case(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.Case(meta.line, tuple(children))

    @v_args(meta=True)
    def case_else(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.CaseElse(meta.line)

    @v_args(meta=True)
    def end_select(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.EndSelect(meta.line)

    @v_args(meta=True)
    def sub_start(self, meta: Any, children: list[Any]) -> blocks.Item:
        token, *params = children
        return blocks.SubStart(
            meta.line, token.value.lower(), tuple(p.value.lower() for p in params)
        )

    @v_args(meta=True)
    def end_sub(self, meta: Any, children: list[Any]) -> blocks.Item:
        return blocks.EndSub(meta.line)

    @v_args(meta=True)
    def call(self, meta: Any, children: list[Any]) -> blocks.Item:
        token, *args = children
        return ast.CallSub(meta.line, token.value.lower(), tuple(args))

    @v_args(meta=True)
    def exit_for(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.ExitFor(meta.line)

    @v_args(meta=True)
    def exit_sub(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.ExitSub(meta.line)

    @v_args(meta=True)
    def add_suggestion(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.AddSuggestion(meta.line, children[0])

    @v_args(meta=True)
    def clear_suggestions(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.ClearSuggestions(meta.line)

    @v_args(meta=True)
    def set_context(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.SetContext(meta.line, children[0], children[1])

    @v_args(meta=True)
    def set_bot_memory(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.SetMemory(meta.line, "bot", children[0], children[1])

    @v_args(meta=True)
    def set_user_memory(self, meta: Any, children: list[Any]) -> blocks.Item:
        return ast.SetMemory(meta.line, "user", children[0], children[1])


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The parser, built once (LALR with a contextual lexer)."""
    grammar = (Path(__file__).parent / "grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True)


# ------------------------------------------------------------ error messages


def _describe_terminal(name: str) -> str:
    if name == "_NL":
        return "end of line"
    if name in ("NAME", "NUMBER", "STRING"):
        return {"NAME": "a name", "NUMBER": "a number", "STRING": "a string"}[name]
    try:
        pattern = _lark().get_terminal(name).pattern
    except KeyError:
        return name
    if isinstance(pattern, PatternStr):
        return f'"{pattern.value}"'
    return name.strip("_").replace("_", " ")


def _describe_token(token: Token) -> str:
    if token.type == "_NL" or token.type == "$END":
        return "end of line"
    return f'"{token.value}"'


def _message(error: UnexpectedInput, lines: list[str]) -> str:
    line_text = lines[error.line - 1] if 0 < error.line <= len(lines) else ""
    first = _FIRST_WORD.match(line_text)
    if first and first.group(1).upper() not in STATEMENT_WORDS and first.group(2) != "=":
        word = first.group(1)
        if first.group(2) == "(":
            return f"Unknown keyword {word} (use CALL {word}(...) to call a SUB)"
        return f"Unknown keyword {word}"
    if isinstance(error, UnexpectedToken):
        expected = sorted({_describe_terminal(name) for name in error.expected})
        found = _describe_token(error.token)
        if {"NAME", "NUMBER", "STRING"} <= set(error.expected):
            return f"Expected a value but found {found}"
        if len(expected) <= 3:
            return f"Expected {' or '.join(expected)} but found {found}"
        return f"Unexpected {found}"
    if isinstance(error, UnexpectedCharacters):
        if error.char == '"':
            return "Unterminated string (missing closing quote)"
        return f'Unexpected character "{error.char}"'
    return "Syntax error"  # pragma: no cover - other lark errors do not occur


def parse_source(source: str, filename: str) -> ast.Module:
    """Parse ``source``; raise :class:`BasicSyntaxError` with file and line."""
    text = source.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    lines = text.split("\n")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as error:
        line = error.line if error.line > 0 else len(lines) - 1
        raise BasicSyntaxError(filename, line, _message(error, lines)) from None
    try:
        items = _ToAst().transform(tree)
    except VisitError as error:
        problem = error.orig_exc
        if isinstance(problem, _SyntaxProblem):
            raise BasicSyntaxError(filename, problem.line, problem.message) from None
        raise
    return blocks.build_module(items, filename, max(len(lines) - 1, 1))
