"""Turn the flat list of parsed lines into nested blocks.

The grammar parses each line on its own, so ``IF x THEN`` and ``END IF`` are
separate "marker" items. :func:`build_module` walks them with a stack of
open blocks, attaches statements to the innermost open block and reports
unbalanced structure with the line where it was noticed, e.g.
``Expected END IF`` or ``NEXT without FOR``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import ast
from .errors import BasicSyntaxError

# ------------------------------------------------------------------ markers


@dataclass(frozen=True)
class Marker:
    line: int


@dataclass(frozen=True)
class IfStart(Marker):
    cond: ast.Expr


@dataclass(frozen=True)
class ElseIf(Marker):
    cond: ast.Expr


@dataclass(frozen=True)
class Else(Marker):
    pass


@dataclass(frozen=True)
class EndIf(Marker):
    pass


@dataclass(frozen=True)
class ForStart(Marker):
    var: str
    start: ast.Expr
    end: ast.Expr
    step: ast.Expr | None


@dataclass(frozen=True)
class ForEachStart(Marker):
    var: str
    iterable: ast.Expr


@dataclass(frozen=True)
class Next(Marker):
    var: str | None


@dataclass(frozen=True)
class WhileStart(Marker):
    cond: ast.Expr


@dataclass(frozen=True)
class Wend(Marker):
    pass


@dataclass(frozen=True)
class SelectStart(Marker):
    subject: ast.Expr


@dataclass(frozen=True)
class Case(Marker):
    values: tuple[ast.Expr, ...]


@dataclass(frozen=True)
class CaseElse(Marker):
    pass


@dataclass(frozen=True)
class EndSelect(Marker):
    pass


@dataclass(frozen=True)
class SubStart(Marker):
    name: str
    params: tuple[str, ...]


@dataclass(frozen=True)
class EndSub(Marker):
    pass


Item = ast.Stmt | Marker

# -------------------------------------------------------------- open blocks


@dataclass
class _Block:
    line: int
    body: list[ast.Stmt] = field(default_factory=list)

    closer = "END"
    opener = "block"

    def current(self) -> list[ast.Stmt] | None:
        return self.body


@dataclass
class _IfBlock(_Block):
    branches: list[tuple[int, ast.Expr, list[ast.Stmt]]] = field(default_factory=list)
    else_body: list[ast.Stmt] | None = None
    closer = "END IF"
    opener = "IF"

    def current(self) -> list[ast.Stmt] | None:
        if self.else_body is not None:
            return self.else_body
        return self.branches[-1][2]


@dataclass
class _ForBlock(_Block):
    start_marker: ForStart | ForEachStart | None = None
    closer = "NEXT"
    opener = "FOR"

    @property
    def var(self) -> str:
        assert self.start_marker is not None
        return self.start_marker.var


@dataclass
class _WhileBlock(_Block):
    cond: ast.Expr | None = None
    closer = "WEND"
    opener = "WHILE"


@dataclass
class _SelectBlock(_Block):
    subject: ast.Expr | None = None
    cases: list[tuple[int, tuple[ast.Expr, ...], list[ast.Stmt]]] = field(default_factory=list)
    else_body: list[ast.Stmt] | None = None
    closer = "END SELECT"
    opener = "SELECT CASE"

    def current(self) -> list[ast.Stmt] | None:
        if self.else_body is not None:
            return self.else_body
        if self.cases:
            return self.cases[-1][2]
        return None


@dataclass
class _SubBlock(_Block):
    name: str = ""
    params: tuple[str, ...] = ()
    closer = "END SUB"
    opener = "SUB"


MAX_BLOCK_DEPTH = 100


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.stack: list[_Block] = []
        self.main: list[ast.Stmt] = []
        self.subs: dict[str, ast.SubDef] = {}

    def error(self, line: int, message: str) -> BasicSyntaxError:
        return BasicSyntaxError(self.filename, line, message)

    def expect(self, kind: type[_Block], line: int, what: str) -> _Block:
        """Return the innermost block if it is a ``kind``; else explain why not."""
        if self.stack and isinstance(self.stack[-1], kind):
            return self.stack[-1]
        if self.stack and not isinstance(self.stack[-1], _SubBlock):
            raise self.error(line, f"Expected {self.stack[-1].closer} before {what}")
        raise self.error(line, f"{what} without {kind.opener}")

    def add(self, stmt: ast.Stmt) -> None:
        if not self.stack:
            self.main.append(stmt)
            return
        body = self.stack[-1].current()
        if body is None:
            raise self.error(stmt.line, "Expected CASE after SELECT CASE")
        body.append(stmt)

    def close(self, stmt: ast.Stmt) -> None:
        """Pop the innermost block and add the finished statement to its parent."""
        self.stack.pop()
        self.add(stmt)

    def feed(self, item: Item) -> None:
        if len(self.stack) > MAX_BLOCK_DEPTH:
            raise self.error(item.line, f"Blocks are nested more than {MAX_BLOCK_DEPTH} deep")
        match item:
            case IfStart():
                self._if_start(item)
            case ElseIf():
                self._elseif(item)
            case Else():
                self._else(item)
            case EndIf():
                self._end_if(item)
            case ForStart() | ForEachStart():
                self._for_start(item)
            case Next():
                self._next(item)
            case WhileStart():
                self._while_start(item)
            case Wend():
                self._wend(item)
            case SelectStart():
                self._select_start(item)
            case Case():
                self._case(item)
            case CaseElse():
                self._case_else(item)
            case EndSelect():
                self._end_select(item)
            case SubStart():
                self._sub_start(item)
            case EndSub():
                self._end_sub(item)
            case ast.Stmt():
                self.add(item)
            case _:  # pragma: no cover - the parser only produces the above
                raise TypeError(f"unexpected item {item!r}")

    # --- IF
    def _if_start(self, m: IfStart) -> None:
        self._check_select_has_case(m.line)
        block = _IfBlock(m.line)
        block.branches.append((m.line, m.cond, []))
        self.stack.append(block)

    def _elseif(self, m: ElseIf) -> None:
        block = self.expect(_IfBlock, m.line, "ELSEIF")
        assert isinstance(block, _IfBlock)
        if block.else_body is not None:
            raise self.error(m.line, "ELSEIF after ELSE")
        block.branches.append((m.line, m.cond, []))

    def _else(self, m: Else) -> None:
        block = self.expect(_IfBlock, m.line, "ELSE")
        assert isinstance(block, _IfBlock)
        if block.else_body is not None:
            raise self.error(m.line, "Duplicate ELSE")
        block.else_body = []

    def _end_if(self, m: EndIf) -> None:
        block = self.expect(_IfBlock, m.line, "END IF")
        assert isinstance(block, _IfBlock)
        branches = tuple(ast.Branch(line, cond, tuple(body)) for line, cond, body in block.branches)
        self.close(ast.If(block.line, branches, tuple(block.else_body or ())))

    # --- FOR / FOR EACH
    def _for_start(self, m: ForStart | ForEachStart) -> None:
        self._check_select_has_case(m.line)
        self.stack.append(_ForBlock(m.line, start_marker=m))

    def _next(self, m: Next) -> None:
        block = self.expect(_ForBlock, m.line, "NEXT")
        assert isinstance(block, _ForBlock)
        if m.var is not None and m.var != block.var:
            raise self.error(m.line, f"NEXT {m.var} does not match FOR {block.var}")
        start = block.start_marker
        body = tuple(block.body)
        stmt: ast.Stmt
        if isinstance(start, ForStart):
            stmt = ast.For(block.line, start.var, start.start, start.end, start.step, body)
        else:
            assert isinstance(start, ForEachStart)
            stmt = ast.ForEach(block.line, start.var, start.iterable, body)
        self.close(stmt)

    # --- WHILE
    def _while_start(self, m: WhileStart) -> None:
        self._check_select_has_case(m.line)
        self.stack.append(_WhileBlock(m.line, cond=m.cond))

    def _wend(self, m: Wend) -> None:
        block = self.expect(_WhileBlock, m.line, "WEND")
        assert isinstance(block, _WhileBlock) and block.cond is not None
        self.close(ast.While(block.line, block.cond, tuple(block.body)))

    # --- SELECT CASE
    def _select_start(self, m: SelectStart) -> None:
        self._check_select_has_case(m.line)
        self.stack.append(_SelectBlock(m.line, subject=m.subject))

    def _case(self, m: Case) -> None:
        block = self.expect(_SelectBlock, m.line, "CASE")
        assert isinstance(block, _SelectBlock)
        if block.else_body is not None:
            raise self.error(m.line, "CASE after CASE ELSE")
        block.cases.append((m.line, m.values, []))

    def _case_else(self, m: CaseElse) -> None:
        block = self.expect(_SelectBlock, m.line, "CASE ELSE")
        assert isinstance(block, _SelectBlock)
        if block.else_body is not None:
            raise self.error(m.line, "Duplicate CASE ELSE")
        block.else_body = []

    def _end_select(self, m: EndSelect) -> None:
        block = self.expect(_SelectBlock, m.line, "END SELECT")
        assert isinstance(block, _SelectBlock) and block.subject is not None
        cases = tuple(
            ast.CaseBranch(line, values, tuple(body)) for line, values, body in block.cases
        )
        stmt = ast.Select(block.line, block.subject, cases, tuple(block.else_body or ()))
        self.close(stmt)

    # --- SUB
    def _sub_start(self, m: SubStart) -> None:
        if self.stack:
            raise self.error(m.line, f"Expected {self.stack[-1].closer} before SUB")
        if m.name in self.subs:
            raise self.error(m.line, f"SUB {m.name} is already defined")
        if len(set(m.params)) != len(m.params):
            raise self.error(m.line, f"SUB {m.name} has duplicate parameter names")
        self.stack.append(_SubBlock(m.line, name=m.name, params=m.params))

    def _end_sub(self, m: EndSub) -> None:
        block = self.expect(_SubBlock, m.line, "END SUB")
        assert isinstance(block, _SubBlock)
        self.stack.pop()
        self.subs[block.name] = ast.SubDef(block.name, block.params, tuple(block.body), block.line)

    def _check_select_has_case(self, line: int) -> None:
        if self.stack and self.stack[-1].current() is None:
            raise self.error(line, "Expected CASE after SELECT CASE")


def build_module(items: Iterable[Item], filename: str, last_line: int) -> ast.Module:
    """Nest ``items`` (statements and block markers, in source order)."""
    builder = _Builder(filename)
    for item in items:
        builder.feed(item)
    if builder.stack:
        raise builder.error(last_line, f"Expected {builder.stack[-1].closer}")
    return ast.Module(tuple(builder.main), builder.subs, last_line)
