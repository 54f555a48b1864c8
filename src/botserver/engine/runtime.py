"""Drives a bot's BASIC dialog for one bot session, one turn at a time.

Resume design: at every HEAR the interpreter hands back a JSON state (where
it stopped, its variables, loop and call frames). The caller stores it with
the turn's bot messages, so the next message — on any instance, after any
restart — continues from there. A state written for an older version of the
script (its source hash differs) is never resumed: the dialog restarts
cleanly and tells the user so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from datetime import datetime
from typing import Any, Protocol

import httpx

from botserver.clock import Clock
from botserver.engine.basic import (
    BasicError,
    DialogChanged,
    HostProblem,
    Limits,
    Program,
    run_turn,
)
from botserver.engine.llm import LlmClient, LlmError, LlmSettings
from botserver.engine.packages import BotPackage
from botserver.storage.db import Database

logger = logging.getLogger(__name__)

RESTARTED = "This conversation was updated, so we are starting over."
FAILED = "Sorry, something went wrong on my side and I had to stop. Send a message to start again."
NO_DIALOG = "This bot has no dialog to run right now."

DialogState = tuple[str, dict[str, Any]]  # (dialog name, interpreter state)


class Outbox(Protocol):
    """Where a turn's bot messages go: buffered, then stored and sent on flush."""

    async def talk(self, content: str, suggestions: list[str]) -> None: ...

    async def flush(self) -> None: ...

    async def stream(self, chunks: AsyncIterator[str], suggestions: list[str]) -> str:
        """Send what is buffered, then ``chunks`` live as one message; store it whole.

        Returns the text stored. If ``chunks`` fails midway, what arrived is
        stored and announced as complete before the error propagates.
        """
        ...


class SessionHost:
    """What a script can reach: its session's messages, memories and context."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        outbox: Outbox,
        *,
        bot_id: str,
        user_id: str,
        session_id: str,
        max_wait: float,
        config: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.outbox = outbox
        self.bot_id = bot_id
        self.user_id = user_id
        self.session_id = session_id
        self.max_wait = max_wait
        self.config = config or {}
        self.http = http

    async def talk(self, content: str, suggestions: list[str]) -> None:
        await self.outbox.talk(content, list(suggestions))

    async def wait(self, seconds: float) -> None:
        # What was said before a pause must reach the user before it.
        await self.outbox.flush()
        await asyncio.sleep(max(0.0, min(seconds, self.max_wait)))

    async def get_bot_memory(self, key: str) -> Any:
        async with self.db.unit() as uow:
            return await uow.memories.get_bot(self.bot_id, key)

    async def set_bot_memory(self, key: str, value: Any) -> None:
        async with self.db.unit() as uow:
            await uow.memories.set_bot(self.bot_id, key, value, self.clock.now())

    async def get_user_memory(self, key: str) -> Any:
        async with self.db.unit() as uow:
            return await uow.memories.get_user(self.bot_id, self.user_id, key)

    async def set_user_memory(self, key: str, value: Any) -> None:
        async with self.db.unit() as uow:
            await uow.memories.set_user(self.bot_id, self.user_id, key, value, self.clock.now())

    async def set_context(self, name: str, value: Any) -> None:
        async with self.db.unit() as uow:
            session = await uow.conversations.get_session(self.session_id)
            if session is not None:
                session.context = {**(session.context or {}), name: value}

    def now(self) -> datetime:
        return self.clock.now()

    async def llm(self, prompt: str) -> str:
        try:
            return await self._llm_client().complete(prompt)
        except LlmError as exc:
            raise HostProblem(str(exc)) from None

    async def llm_stream(self, prompt: str) -> AsyncIterator[str]:
        try:
            async with aclosing(self._llm_client().stream(prompt)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except LlmError as exc:
            raise HostProblem(str(exc)) from None

    async def talk_stream(self, chunks: AsyncIterator[str], suggestions: list[str]) -> str:
        return await self.outbox.stream(chunks, list(suggestions))

    def _llm_client(self) -> LlmClient:
        # Read on use, so a bot whose LLM rows are wrong fails only where it calls LLM.
        return LlmClient(LlmSettings.from_config(self.config), http=self.http)


class DialogRuntime:
    def __init__(
        self, db: Database, clock: Clock, *, limits: Limits | None = None, max_wait: float = 5.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.limits = limits or Limits()
        self.max_wait = max_wait
        # One connection pool for every model endpoint the bots call.
        self.http = httpx.AsyncClient(follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def turn(
        self,
        package: BotPackage | None,
        saved: DialogState | None,
        user_input: str | None,
        outbox: Outbox,
        *,
        bot_id: str,
        user_id: str,
        session_id: str,
    ) -> DialogState | None:
        """Run the dialog until it waits at a HEAR (its new state) or ends (None)."""
        if package is None or package.error or not package.dialogs:
            await outbox.talk(NO_DIALOG, [])
            return None
        host = SessionHost(
            self.db,
            self.clock,
            outbox,
            bot_id=bot_id,
            user_id=user_id,
            session_id=session_id,
            max_wait=self.max_wait,
            config=package.config,
            http=self.http,
        )
        dialog, state = saved if saved else (package.entry_dialog, None)
        program = package.dialogs.get(dialog)
        if program is None:  # the dialog it waited in is gone: start over
            dialog, state = package.entry_dialog, None
            program = package.dialogs.get(dialog)
        if program is None:
            await outbox.talk(NO_DIALOG, [])
            return None

        try:
            new_state = await self._run(program, host, package, state, user_input)
        except DialogChanged:
            logger.info("Dialog %s of bot %s changed while waiting; restarting it.", dialog, bot_id)
            await outbox.talk(RESTARTED, [])
            dialog = package.entry_dialog
            new_state = await self._run(package.dialogs[dialog], host, package, None, None)
        return (dialog, new_state) if new_state is not None else None

    async def _run(
        self,
        program: Program,
        host: SessionHost,
        package: BotPackage,
        state: dict[str, Any] | None,
        user_input: str | None,
    ) -> dict[str, Any] | None:
        try:
            result = await run_turn(
                program,
                host,
                state,
                user_input if state is not None else None,
                params=dict(package.params),
                limits=self.limits,
            )
        except DialogChanged:
            raise
        except BasicError as exc:
            # The operator needs file:line; the user needs to know the turn stopped.
            logger.warning("Bot %s stopped a dialog turn: %s", package.name, exc)
            await host.talk(FAILED, [])
            return None
        return result.state
