"""A small in-memory Host for driving BASIC programs in tests."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botserver.engine.basic import (
    HostProblem,
    Limits,
    Program,
    TurnResult,
    compile_source,
    run_turn,
)


@dataclass
class Message:
    content: str
    suggestions: list[str]


@dataclass
class FakeHost:
    """Records what the script does; memories are plain dicts."""

    clock: datetime = field(default_factory=lambda: datetime(2024, 5, 17, 14, 5, 9, tzinfo=UTC))
    messages: list[Message] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    bot_memory: dict[str, Any] = field(default_factory=dict)
    user_memory: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # The language model: `answer` makes the reply; `llm_failure` makes every
    # call fail with that message, after `fail_after` pieces when streaming.
    answer: Callable[[str], str] = field(default=lambda prompt: f"An answer about {prompt}.")
    llm_failure: str | None = None
    fail_after: int | None = None
    prompts: list[str] = field(default_factory=list)
    streams: list[list[str]] = field(default_factory=list)

    async def talk(self, content: str, suggestions: list[str]) -> None:
        self.messages.append(Message(content, list(suggestions)))

    async def wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def get_bot_memory(self, key: str) -> Any:
        self.calls.append(("get_bot_memory", key))
        return self.bot_memory.get(key)

    async def set_bot_memory(self, key: str, value: Any) -> None:
        self.calls.append(("set_bot_memory", (key, value)))
        self.bot_memory[key] = value

    async def get_user_memory(self, key: str) -> Any:
        self.calls.append(("get_user_memory", key))
        return self.user_memory.get(key)

    async def set_user_memory(self, key: str, value: Any) -> None:
        self.calls.append(("set_user_memory", (key, value)))
        self.user_memory[key] = value

    async def set_context(self, name: str, value: Any) -> None:
        self.context[name] = value

    def now(self) -> datetime:
        return self.clock

    async def llm(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if self.llm_failure is not None:
            raise HostProblem(self.llm_failure)
        return self.answer(prompt)

    async def llm_stream(self, prompt: str) -> AsyncIterator[str]:
        self.prompts.append(prompt)
        for number, piece in enumerate(re.findall(r"\S+\s*", self.answer(prompt))):
            if self.llm_failure is not None and number == (self.fail_after or 0):
                raise HostProblem(self.llm_failure)
            yield piece

    async def talk_stream(self, chunks: AsyncIterator[str], suggestions: list[str]) -> str:
        """Like the pipeline: what arrived is said as one message, even on failure."""
        received: list[str] = []
        try:
            async for chunk in chunks:
                received.append(chunk)
        finally:
            self.streams.append(received)
            if received:
                self.messages.append(Message("".join(received), list(suggestions)))
        if not received:  # an empty answer is said like TALK ""
            self.messages.append(Message("", list(suggestions)))
        return "".join(received)

    def texts(self) -> list[str]:
        return [message.content for message in self.messages]


class Conversation:
    """Drives a program turn by turn, JSON round-tripping the state each time."""

    def __init__(
        self,
        program: Program,
        host: FakeHost | None = None,
        *,
        params: dict[str, Any] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.program = program
        self.host = host or FakeHost()
        self.params = params
        self.limits = limits or Limits()
        self.state: dict[str, Any] | None = None
        self.last: TurnResult | None = None
        self.seen = len(self.host.messages)

    async def start(self) -> list[str]:
        return await self._turn(None)

    async def say(self, text: str) -> list[str]:
        assert self.state is not None, "the dialog is not waiting"
        return await self._turn(text)

    async def _turn(self, text: str | None) -> list[str]:
        result = await run_turn(
            self.program, self.host, self.state, text, params=self.params, limits=self.limits
        )
        self.last = result
        self.state = None if result.state is None else json.loads(json.dumps(result.state))
        new = self.host.messages[self.seen :]
        self.seen = len(self.host.messages)
        return [message.content for message in new]

    @property
    def ended(self) -> bool:
        return self.last is not None and self.last.ended


def compile_text(source: str, filename: str = "start.bas") -> Program:
    return compile_source(source, filename)


async def run_script(
    source: str, host: FakeHost | None = None, **kwargs: Any
) -> tuple[Conversation, list[str]]:
    """Start ``source`` and return the conversation and what the bot said."""
    conversation = Conversation(compile_text(source), host, **kwargs)
    said = await conversation.start()
    return conversation, said


async def evaluate(expression: str, **variables: Any) -> Any:
    """The value of one expression, as stored in the variables (types kept)."""
    source = f"result = {expression}\nHEAR stop\n"
    conversation, _ = await run_script(source, params=variables)
    assert conversation.state is not None
    return conversation.state["frames"][0]["vars"]["result"]
