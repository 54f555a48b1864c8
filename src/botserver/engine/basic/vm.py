"""The virtual machine that runs a compiled :class:`Program` one turn at a time.

How resume works
----------------
A turn runs instructions until a ``HEAR`` or the end of the program. At a
``HEAR`` the VM stops *on* that instruction and returns its whole state as a
plain JSON-compatible dict::

    {
      "version": 1,
      "source_hash": "<sha256 of the source>",
      "filename": "start.bas",
      "pc": 17,                          # index of the waiting HEAR
      "frames": [                        # frame 0 is the main flow
        {"sub": null, "return_pc": null, "vars": {...}, "loops": {...}},
        {"sub": "ask", "return_pc": 9, "vars": {...}, "loops": {...}}
      ],
      "suggestions": ["Yes", "No"],      # pending, for the next TALK
      "hear": {"var": "n", "kind": "INTEGER", "choices": [], "retries": 0}
    }

``loops`` maps a loop's id (the index of its init instruction) to its state:
``{"end": 10, "step": 1}`` for FOR, ``{"items": [...], "index": 2}`` for
FOR EACH. Nothing else lives in Python objects between turns, so the state
can be stored in a database and resumed by another process after a restart.
The next turn validates the answer against ``hear``; if it does not fit, the
bot says so and the same state is returned, otherwise the value is assigned
and execution continues at ``pc + 1``. A state whose ``source_hash`` differs
from the program's raises :class:`DialogChanged`: the program counter would be
meaningless in a different program.

Scoping: frame 0 holds the global variables. Inside a SUB, reading looks at
the SUB's locals (its parameters and variables it created) and then at the
globals; assigning updates an existing local, else an existing global, else
creates a local. Unknown variables read as ``""``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import Any

from . import ast
from . import program as p
from .errors import (
    BasicRuntimeError,
    CallDepthExceeded,
    DialogChanged,
    LimitExceeded,
    SizeProblem,
    StepBudgetExceeded,
    ValueProblem,
)
from .functions import FUNCTIONS, CallContext
from .hear import check_answer
from .host import Host
from .limits import Limits
from .values import (
    Value,
    add,
    arithmetic,
    check_size,
    check_text,
    compare,
    equals,
    negate,
    to_number,
    to_text,
    truthy,
)

logger = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class TurnResult:
    """Outcome of one turn.

    ``state`` is None when the dialog ended, else the JSON-compatible state
    of a dialog waiting at a HEAR (``waiting_for`` names its variable).
    ``retry`` is True when the answer was rejected and the same HEAR waits
    again. ``steps`` counts the instructions executed in this turn.
    """

    state: dict[str, Any] | None
    ended: bool
    steps: int = 0
    retry: bool = False
    waiting_for: str | None = None


def _is_resumable(program: p.Program, state: dict[str, Any]) -> bool:
    """Structural check of a stored state before trusting its program counter."""
    pc = state.get("pc")
    frames = state.get("frames")
    hear = state.get("hear")
    if not (isinstance(pc, int) and 0 <= pc < len(program.code)):
        return False
    if not isinstance(program.code[pc], p.HearI) or not isinstance(state.get("suggestions"), list):
        return False
    if not (isinstance(hear, dict) and {"var", "kind", "choices"} <= hear.keys()):
        return False
    if not (isinstance(frames, list) and frames):
        return False
    for depth, frame in enumerate(frames):
        if not (
            isinstance(frame, dict)
            and isinstance(frame.get("vars"), dict)
            and isinstance(frame.get("loops"), dict)
            and (depth == 0 or isinstance(frame.get("return_pc"), int))
        ):
            return False
    return True


class _Signal:
    """Returned by instructions that stop the run loop."""


_WAIT = _Signal()
_END = _Signal()


class VM:
    """Executes one turn of ``program`` against ``host``; see the module doc."""

    def __init__(
        self, program: p.Program, host: Host, limits: Limits, state: dict[str, Any]
    ) -> None:
        self.program = program
        self.host = host
        self.limits = limits
        self.pc: int = state["pc"]
        self.frames: list[dict[str, Any]] = state["frames"]
        self.suggestions: list[str] = state["suggestions"]
        self.hear: dict[str, Any] | None = state["hear"]
        self.steps = 0
        self.functions = CallContext(clock=host.now, limits=limits)

    # ------------------------------------------------------------- creation
    @classmethod
    def start(
        cls, program: p.Program, host: Host, limits: Limits, params: dict[str, Any] | None
    ) -> VM:
        variables = {str(key).lower(): value for key, value in (params or {}).items()}
        for value in variables.values():
            try:
                check_size(value, limits)
            except SizeProblem as problem:
                raise LimitExceeded(program.filename, 1, f"Parameter: {problem}") from None
        state = {
            "pc": 0,
            "frames": [{"sub": None, "return_pc": None, "vars": variables, "loops": {}}],
            "suggestions": [],
            "hear": None,
        }
        return cls(program, host, limits, state)

    @classmethod
    def restore(cls, program: p.Program, host: Host, limits: Limits, state: dict[str, Any]) -> VM:
        found = state.get("source_hash") if isinstance(state, dict) else None
        if found != program.source_hash or state.get("version") != STATE_VERSION:
            raise DialogChanged(program.filename, program.source_hash, found)
        state = copy.deepcopy(state)
        if not _is_resumable(program, state):
            logger.warning("unusable dialog state for %s", program.filename)
            raise DialogChanged(program.filename, program.source_hash, found)
        return cls(program, host, limits, state)

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "source_hash": self.program.source_hash,
            "filename": self.program.filename,
            "pc": self.pc,
            "frames": self.frames,
            "suggestions": self.suggestions,
            "hear": self.hear,
        }

    # ------------------------------------------------------------ variables
    def lookup(self, name: str) -> Value:
        frame = self.frames[-1]["vars"]
        if name in frame:
            return frame[name]
        return self.frames[0]["vars"].get(name, "")

    def assign(self, name: str, value: Value) -> None:
        # Lists are checked where they are built; re-checking them here would
        # make every assignment cost O(len).
        check_text(value, self.limits)
        local = self.frames[-1]["vars"]
        if len(self.frames) > 1 and name not in local and name in self.frames[0]["vars"]:
            self.frames[0]["vars"][name] = value
        else:
            local[name] = value

    def loop_state(self, loop_id: int) -> dict[str, Any]:
        loop: dict[str, Any] = self.frames[-1]["loops"][str(loop_id)]
        return loop

    # ------------------------------------------------------------ execution
    def error(self, instr: p.Instr, message: str) -> BasicRuntimeError:
        return BasicRuntimeError(self.program.filename, instr.line, message)

    async def answer(self, text: str) -> bool:
        """Feed the user's answer to the waiting HEAR; False if it was rejected."""
        assert self.hear is not None
        result = check_answer(self.hear["kind"], self.hear["choices"], text)
        if not result.ok:
            self.hear["retries"] = int(self.hear.get("retries", 0)) + 1
            suggestions = list(self.hear["choices"]) if self.hear["kind"] == "CHOICE" else []
            await self.host.talk(result.retry_message, suggestions)
            return False
        instr = self.program.code[self.pc]
        try:
            self.assign(self.hear["var"], result.value)
        except SizeProblem as problem:
            raise LimitExceeded(self.program.filename, instr.line, str(problem)) from None
        self.hear = None
        self.pc += 1
        return True

    async def run(self) -> bool:
        """Run until a HEAR (returns True) or the end (returns False)."""
        code = self.program.code
        while True:
            instr = code[self.pc]
            self.steps += 1
            if self.steps > self.limits.max_steps:
                raise StepBudgetExceeded(
                    self.program.filename,
                    instr.line,
                    f"Step budget of {self.limits.max_steps} instructions exceeded (endless loop?)",
                )
            if self.steps % self.limits.yield_every == 0:
                await asyncio.sleep(0)
            try:
                signal = await self.execute(instr)
            except SizeProblem as problem:
                raise LimitExceeded(self.program.filename, instr.line, str(problem)) from None
            except ValueProblem as problem:
                raise self.error(instr, str(problem)) from None
            if signal is _WAIT:
                return True
            if signal is _END:
                return False

    async def execute(self, instr: p.Instr) -> _Signal | None:
        next_pc = self.pc + 1
        match instr:
            case p.TalkI(expr=expr):
                content = to_text(await self.eval(expr))
                suggestions, self.suggestions = self.suggestions, []
                await self.host.talk(content, suggestions)
            case p.TalkLlmI(prompt=prompt):
                text = to_text(await self.eval(prompt))
                suggestions, self.suggestions = self.suggestions, []
                await self.host.talk_stream(self.host.llm_stream(text), suggestions)
            case p.HearI(var=var, kind=kind, choices=choice_exprs):
                choices: list[str] = []
                for choice in choice_exprs:
                    value = await self.eval(choice)
                    items = value if isinstance(value, list) else [value]
                    choices.extend(text for text in map(to_text, items) if text.strip())
                check_size(choices, self.limits)
                self.hear = {"var": var, "kind": kind, "choices": choices, "retries": 0}
                return _WAIT
            case p.WaitI(seconds=seconds):
                delay = float(to_number(await self.eval(seconds)))
                await self.host.wait(min(max(delay, 0.0), self.limits.max_wait_seconds))
            case p.AssignI(var=var, expr=expr):
                self.assign(var, await self.eval(expr))
            case p.JumpI(target=target):
                next_pc = target
            case p.JumpIfFalseI(cond=cond, target=target):
                if not truthy(await self.eval(cond)):
                    next_pc = target
            case p.ForInitI():
                start = to_number(await self.eval(instr.start))
                end = to_number(await self.eval(instr.end))
                step = 1 if instr.step is None else to_number(await self.eval(instr.step))
                if step == 0:
                    raise self.error(instr, "FOR STEP cannot be 0")
                self.assign(instr.var, start)
                self.frames[-1]["loops"][str(instr.loop_id)] = {"end": end, "step": step}
            case p.ForTestI(var=var, loop_id=loop_id, exit_target=exit_target):
                loop = self.loop_state(loop_id)
                counter = to_number(self.lookup(var))
                if counter > loop["end"] if loop["step"] > 0 else counter < loop["end"]:
                    next_pc = exit_target
            case p.ForStepI(var=var, loop_id=loop_id, test_target=test_target):
                loop = self.loop_state(loop_id)
                self.assign(var, arithmetic("-", to_number(self.lookup(var)), -loop["step"]))
                next_pc = test_target
            case p.EachInitI(iterable=iterable, loop_id=loop_id):
                value = await self.eval(iterable)
                if isinstance(value, list):
                    items = list(value)
                else:
                    items = [] if value in ("", None) else [value]
                self.frames[-1]["loops"][str(loop_id)] = {"items": items, "index": 0}
            case p.EachNextI(var=var, loop_id=loop_id, exit_target=exit_target):
                loop = self.loop_state(loop_id)
                if loop["index"] < len(loop["items"]):
                    self.assign(var, loop["items"][loop["index"]])
                    loop["index"] += 1
                else:
                    next_pc = exit_target
            case p.LoopEndI(loop_id=loop_id):
                self.frames[-1]["loops"].pop(str(loop_id), None)
            case p.CallI(sub=name, args=arg_exprs):
                sub = self.program.subs[name]
                if len(self.frames) > self.limits.max_call_depth:
                    raise CallDepthExceeded(
                        self.program.filename,
                        instr.line,
                        f"Maximum call depth of {self.limits.max_call_depth} exceeded"
                        " (endless recursion?)",
                    )
                args = [await self.eval(arg) for arg in arg_exprs]
                variables = dict(zip(sub.params, args, strict=True))
                self.frames.append(
                    {"sub": name, "return_pc": next_pc, "vars": variables, "loops": {}}
                )
                next_pc = sub.entry
            case p.ReturnI():
                frame = self.frames.pop()
                next_pc = frame["return_pc"]
            case p.AddSuggestionI(text=text):
                suggestion = to_text(await self.eval(text))
                if suggestion not in self.suggestions:
                    self.suggestions.append(suggestion)
                    check_size(self.suggestions, self.limits)
            case p.ClearSuggestionsI():
                self.suggestions = []
            case p.SetContextI(name=name, value=value):
                key = to_text(await self.eval(name))
                await self.host.set_context(key, await self.eval(value))
            case p.SetMemoryI(scope=scope, key=key_expr, value=value_expr):
                key = to_text(await self.eval(key_expr))
                value = await self.eval(value_expr)
                if scope == "bot":
                    await self.host.set_bot_memory(key, value)
                else:
                    await self.host.set_user_memory(key, value)
            case p.EndI():
                return _END
            case _:  # pragma: no cover - the compiler emits only the above
                raise TypeError(f"unknown instruction {instr!r}")
        self.pc = next_pc
        return None

    async def eval(self, expr: ast.Expr) -> Value:
        match expr:
            case ast.Literal(value=value):
                return value
            case ast.Var(name=name):
                return self.lookup(name)
            case ast.Interpolation(parts=parts):
                pieces = [to_text(await self.eval(part)) for part in parts]
                return check_size("".join(pieces), self.limits)
            case ast.ListExpr(items=items):
                values = [await self.eval(item) for item in items]
                if any(isinstance(value, list | dict) for value in values):
                    raise ValueProblem("A list cannot contain another list")
                return check_size(values, self.limits)
            case ast.Unary(op="-", operand=operand):
                return negate(await self.eval(operand))
            case ast.Unary(op="NOT", operand=operand):
                return not truthy(await self.eval(operand))
            case ast.Binary(op="AND", left=left, right=right):
                return truthy(await self.eval(left)) and truthy(await self.eval(right))
            case ast.Binary(op="OR", left=left, right=right):
                return truthy(await self.eval(left)) or truthy(await self.eval(right))
            case ast.Binary(op=op, left=left, right=right):
                return self.binary(op, await self.eval(left), await self.eval(right))
            case ast.FuncCall(name=name, args=arg_exprs):
                args = [await self.eval(arg) for arg in arg_exprs]
                return check_size(FUNCTIONS[name].impl(self.functions, args), self.limits)
            case ast.MemoryGet(scope=scope, key=key_expr):
                key = to_text(await self.eval(key_expr))
                if scope == "bot":
                    value = await self.host.get_bot_memory(key)
                else:
                    value = await self.host.get_user_memory(key)
                return check_size("" if value is None else value, self.limits)
            case ast.LlmCall(prompt=prompt):
                answer = await self.host.llm(to_text(await self.eval(prompt)))
                return check_size(answer, self.limits)
            case ast.CaseMatch(subject=subject, values=values):
                actual = await self.eval(subject)
                for candidate in values:
                    if equals(actual, await self.eval(candidate)):
                        return True
                return False
        raise TypeError(f"unknown expression {expr!r}")  # pragma: no cover

    def binary(self, op: str, left: Value, right: Value) -> Value:
        if op == "&":
            return check_size(to_text(left) + to_text(right), self.limits)
        if op == "+":
            return check_size(add(left, right), self.limits)
        if op == "=":
            return equals(left, right)
        if op == "<>":
            return not equals(left, right)
        if op in ("<", ">", "<=", ">="):
            order = compare(left, right)
            return {"<": order < 0, ">": order > 0, "<=": order <= 0, ">=": order >= 0}[op]
        return arithmetic(op, left, right)


async def run_turn(
    program: p.Program,
    host: Host,
    state: dict[str, Any] | None,
    user_input: str | None,
    *,
    params: dict[str, Any] | None = None,
    limits: Limits = Limits(),
) -> TurnResult:
    """Run one turn of a dialog.

    * ``state=None``: start at the top; ``params`` become initial variables
      (keys lower-cased) and ``user_input`` is ignored.
    * ``state`` from a previous :class:`TurnResult`: ``user_input`` answers the
      waiting HEAR. A rejected answer makes the bot explain (via
      ``host.talk``) and returns the same waiting state with ``retry=True``.

    Raises :class:`DialogChanged` if the state belongs to another program
    version, :class:`BasicRuntimeError` (or a :class:`LimitExceeded`
    subclass) if the script fails; host exceptions propagate unchanged.
    """
    if state is None:
        vm = VM.start(program, host, limits, params)
    else:
        vm = VM.restore(program, host, limits, state)
        if user_input is None:
            raise ValueError("user_input is required to resume a dialog waiting at HEAR")
        if not await vm.answer(user_input):
            assert vm.hear is not None
            return TurnResult(vm.snapshot(), ended=False, retry=True, waiting_for=vm.hear["var"])
    waiting = await vm.run()
    if not waiting:
        return TurnResult(None, ended=True, steps=vm.steps)
    assert vm.hear is not None
    return TurnResult(vm.snapshot(), ended=False, steps=vm.steps, waiting_for=vm.hear["var"])
