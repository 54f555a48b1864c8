"""Compile the nested AST into a flat :class:`Program`.

Layout: the main flow comes first and ends with ``EndI``; each SUB follows
with its body and a ``ReturnI``. ``CALL`` is checked against the SUBs
(name and argument count) here, as are ``EXIT FOR`` / ``EXIT SUB``
placement. Loops get a ``loop_id`` (the index of their init instruction)
under which the VM keeps their state in the current frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

from . import ast
from . import program as p
from .errors import BasicSyntaxError
from .parser import parse_source

# The VM evaluates expressions recursively; this keeps it far from Python's
# recursion limit. Long flat chains like 1 + 2 + ... are nested too.
MAX_EXPRESSION_DEPTH = 200


def _depth(node: object) -> int:
    """Depth of the expression tree(s) held by ``node``, without recursion."""
    deepest = 0
    pending: list[tuple[object, int]] = [(node, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, tuple):
            pending.extend((child, level) for child in item)
        elif isinstance(item, ast.Expr | p.Instr):
            if isinstance(item, ast.Expr):
                level += 1
                deepest = max(deepest, level)
            pending.extend((getattr(item, f.name), level) for f in fields(item))
    return deepest


@dataclass
class _Context:
    in_sub: bool = False
    loop_ends: list[list[int]] = field(default_factory=list)  # EXIT FOR jumps to patch


class _Compiler:
    def __init__(self, module: ast.Module, filename: str) -> None:
        self.module = module
        self.filename = filename
        self.code: list[p.Instr] = []
        self.select_counter = 0

    def error(self, line: int, message: str) -> BasicSyntaxError:
        return BasicSyntaxError(self.filename, line, message)

    def emit(self, instr: p.Instr) -> int:
        if _depth(instr) > MAX_EXPRESSION_DEPTH:
            raise self.error(instr.line, "Expression is nested too deeply")
        self.code.append(instr)
        return len(self.code) - 1

    def here(self) -> int:
        return len(self.code)

    def patch(self, index: int, **changes: int) -> None:
        self.code[index] = replace(self.code[index], **changes)

    def compile(self) -> tuple[tuple[p.Instr, ...], dict[str, p.SubInfo]]:
        self.block(self.module.body, _Context())
        self.emit(p.EndI(self.module.last_line))
        subs: dict[str, p.SubInfo] = {}
        for sub in self.module.subs.values():
            subs[sub.name] = p.SubInfo(sub.name, sub.params, self.here())
            self.block(sub.body, _Context(in_sub=True))
            self.emit(p.ReturnI(sub.line))
        return tuple(self.code), subs

    def block(self, body: tuple[ast.Stmt, ...], ctx: _Context) -> None:
        for stmt in body:
            self.stmt(stmt, ctx)

    def stmt(self, stmt: ast.Stmt, ctx: _Context) -> None:
        line = stmt.line
        match stmt:
            case ast.Talk(expr=ast.LlmCall(prompt=prompt)):
                # Only this exact shape streams; any other use of LLM() waits for
                # the whole answer like every other expression.
                self.emit(p.TalkLlmI(line, prompt))
            case ast.Talk(expr=expr):
                self.emit(p.TalkI(line, expr))
            case ast.Hear(var=var, kind=kind, choices=choices):
                self.emit(p.HearI(line, var, kind, choices))
            case ast.Wait(seconds=seconds):
                self.emit(p.WaitI(line, seconds))
            case ast.Assign(var=var, expr=expr):
                self.emit(p.AssignI(line, var, expr))
            case ast.If():
                self.if_(stmt, ctx)
            case ast.For():
                self.for_(stmt, ctx)
            case ast.ForEach():
                self.for_each(stmt, ctx)
            case ast.While(cond=cond, body=body):
                top = self.emit(p.JumpIfFalseI(line, cond, -1))
                self.block(body, ctx)
                self.emit(p.JumpI(line, top))
                self.patch(top, target=self.here())
            case ast.Select():
                self.select(stmt, ctx)
            case ast.CallSub(name=name, args=args):
                sub = self.module.subs.get(name)
                if sub is None:
                    raise self.error(line, f"Unknown SUB {name}")
                if len(args) != len(sub.params):
                    raise self.error(
                        line, f"SUB {name} expects {len(sub.params)} arguments, got {len(args)}"
                    )
                self.emit(p.CallI(line, name, args))
            case ast.ExitFor():
                if not ctx.loop_ends:
                    raise self.error(line, "EXIT FOR outside FOR")
                ctx.loop_ends[-1].append(self.emit(p.JumpI(line, -1)))
            case ast.ExitSub():
                if not ctx.in_sub:
                    raise self.error(line, "EXIT SUB outside SUB")
                self.emit(p.ReturnI(line))
            case ast.AddSuggestion(text=text):
                self.emit(p.AddSuggestionI(line, text))
            case ast.ClearSuggestions():
                self.emit(p.ClearSuggestionsI(line))
            case ast.SetContext(name=name, value=value):
                self.emit(p.SetContextI(line, name, value))
            case ast.SetMemory(scope=scope, key=key, value=value):
                self.emit(p.SetMemoryI(line, scope, key, value))
            case _:  # pragma: no cover - every statement type is handled above
                raise TypeError(f"cannot compile {stmt!r}")

    def if_(self, stmt: ast.If, ctx: _Context) -> None:
        to_end: list[int] = []
        for branch in stmt.branches:
            test = self.emit(p.JumpIfFalseI(branch.line, branch.cond, -1))
            self.block(branch.body, ctx)
            to_end.append(self.emit(p.JumpI(branch.line, -1)))
            self.patch(test, target=self.here())
        self.block(stmt.else_body, ctx)
        for jump in to_end:
            self.patch(jump, target=self.here())

    def for_(self, stmt: ast.For, ctx: _Context) -> None:
        loop_id = self.here()
        self.emit(p.ForInitI(stmt.line, stmt.var, stmt.start, stmt.end, stmt.step, loop_id))
        test = self.emit(p.ForTestI(stmt.line, stmt.var, loop_id, -1))
        ctx.loop_ends.append([])
        self.block(stmt.body, ctx)
        self.emit(p.ForStepI(stmt.line, stmt.var, loop_id, test))
        self.end_loop(stmt.line, loop_id, test, ctx)

    def for_each(self, stmt: ast.ForEach, ctx: _Context) -> None:
        loop_id = self.here()
        self.emit(p.EachInitI(stmt.line, stmt.iterable, loop_id))
        step = self.emit(p.EachNextI(stmt.line, stmt.var, loop_id, -1))
        ctx.loop_ends.append([])
        self.block(stmt.body, ctx)
        self.emit(p.JumpI(stmt.line, step))
        self.end_loop(stmt.line, loop_id, step, ctx)

    def end_loop(self, line: int, loop_id: int, test: int, ctx: _Context) -> None:
        end = self.emit(p.LoopEndI(line, loop_id))
        self.patch(test, exit_target=end)
        for jump in ctx.loop_ends.pop():
            self.patch(jump, target=end)

    def select(self, stmt: ast.Select, ctx: _Context) -> None:
        self.select_counter += 1
        temp = f"#select{self.select_counter}"  # cannot clash with script names
        self.emit(p.AssignI(stmt.line, temp, stmt.subject))
        to_end: list[int] = []
        for case in stmt.cases:
            match = ast.CaseMatch(ast.Var(temp), case.values)
            test = self.emit(p.JumpIfFalseI(case.line, match, -1))
            self.block(case.body, ctx)
            to_end.append(self.emit(p.JumpI(case.line, -1)))
            self.patch(test, target=self.here())
        self.block(stmt.else_body, ctx)
        for jump in to_end:
            self.patch(jump, target=self.here())


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def compile_source(source: str, filename: str) -> p.Program:
    """Parse and compile ``source``; raise :class:`BasicSyntaxError` on errors."""
    module = parse_source(source, filename)
    code, subs = _Compiler(module, filename).compile()
    return p.Program(filename, source_hash(source), code, MappingProxyType(subs))
