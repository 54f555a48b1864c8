"""The conversation pipeline: bot sessions, durable messages, ordered turns.

Every message, the user's or the bot's, is stored with the session's next
`seq` (1, 2, 3, … without gaps) before anyone is told about it, and only
then published on the bus. A session's messages are processed one at a
time, in arrival order, under its lock, whether they come from a socket or
REST; different sessions run concurrently. On PostgreSQL the lock holds
across all instances (`services/locks.py` says how, and what "arrival
order" means when two instances receive messages at the same moment).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from botserver.bus import Bus, session_channel
from botserver.clock import Clock, isoformat, utc
from botserver.engine.runtime import DialogRuntime, DialogState
from botserver.errors import ApiError, ErrorCode
from botserver.metrics import Metrics
from botserver.services.bots import ONLINE, BotService
from botserver.services.locks import SessionLocks
from botserver.services.principal import Principal
from botserver.storage.db import Database
from botserver.storage.models import BotSession, Message, new_id
from botserver.storage.repos.conversations import ConversationRepo

logger = logging.getLogger(__name__)

ACTIVE = "active"
ENDED = "ended"
EXPIRED = "expired"
MAX_CONTENT = 16 * 1024
# seq is a 32-bit column on PostgreSQL; larger numbers are refused before any query.
MAX_SEQ = 2**31 - 1
# Streamed text is sent on when this much has gathered or this long has passed
# since the last piece went out, so tiny tokens do not each cost a frame.
DELTA_CHARS = 64
DELTA_SECONDS = 0.05
# How many sessions' owner and bot are remembered (see `SessionFacts`), and how
# many dialog states (see `ConversationService._saved_state`).
FACTS_KEPT = 10_000
STATES_KEPT = 1_000

Kept = TypeVar("Kept")

GroupLookup = Callable[[str], Awaitable[set[str]]]


def message_view(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "session_id": message.session_id,
        "seq": message.seq,
        "sender": message.sender,
        "content": message.content,
        "suggestions": list(message.suggestions or []),
        "client_id": message.client_id,
        "created_at": isoformat(message.created_at),
    }


def session_ended_error() -> ApiError:
    return ApiError(ErrorCode.SESSION_ENDED, "This session has ended; create a new one.", 410)


@dataclass(frozen=True)
class SessionFacts:
    """What never changes about a session: who owns it and which bot it talks to.

    Remembered per instance, so a message to a known session takes its seq
    with one UPDATE instead of reading the row first; being immutable, the
    facts cannot go stale when another instance serves the session.
    """

    id: str
    user_id: str
    bot_id: str

    @classmethod
    def of(cls, session: BotSession) -> SessionFacts:
        return cls(session.id, session.user_id, session.bot_id)


@dataclass
class PostResult:
    user_message: dict[str, Any]
    replies: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False


class ConversationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: Bus,
        locks: SessionLocks,
        bots: BotService,
        runtime: DialogRuntime,
        metrics: Metrics,
        *,
        idle_minutes: float,
        group_names: GroupLookup | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.locks = locks
        self.bots = bots
        self.runtime = runtime
        self.metrics = metrics
        self.idle_minutes = idle_minutes
        self.group_names = group_names
        self._facts: dict[str, SessionFacts] = {}
        self._states: dict[str, tuple[int, DialogState | None]] = {}

    def _remember(self, session: BotSession) -> SessionFacts:
        facts = self._facts.get(session.id)
        if facts is None:
            facts = _keep(self._facts, session.id, SessionFacts.of(session), FACTS_KEPT)
        return facts

    # -- sessions -----------------------------------------------------------

    async def groups_of(self, principal: Principal) -> set[str]:
        return await self.group_names(principal.user_id) if self.group_names else set()

    async def create_session(self, principal: Principal, bot_id: str) -> BotSession:
        """Open a session with a bot the caller may use, and run its entry dialog."""
        bot = await self.bots.get(bot_id)
        if bot is None or not self.bots.visible_to(
            bot, await self.groups_of(principal), principal.is_admin
        ):
            raise ApiError.not_found("Bot")
        if bot.status != ONLINE:
            raise ApiError.unavailable(f"Bot {bot.name} is offline.")

        now = self.clock.now()
        async with self.db.unit() as uow:
            session = await uow.conversations.add_session(
                BotSession(
                    id=new_id("session"),
                    user_id=principal.user_id,
                    bot_id=bot.id,
                    status=ACTIVE,
                    last_seq=0,
                    context={},
                    created_at=now,
                    last_activity_at=now,
                    expires_at=now + self._idle(bot.session_timeout_minutes),
                )
            )
        facts = self._remember(session)
        outbox = _TurnOutbox(self, session.id, last_seq=session.last_seq)
        async with self.locks.hold(session.id):
            await self._run_turn(facts, None, None, outbox)
        return session

    def _idle(self, bot_minutes: float | None) -> timedelta:
        return timedelta(minutes=bot_minutes or self.idle_minutes)

    async def owned_session(
        self, principal: Principal, session_id: str, *, admin_may: bool = False
    ) -> BotSession:
        """The caller's session (or any, for an admin when `admin_may`); 404, never 403."""
        async with self.db.unit() as uow:
            session = await uow.conversations.get_session(session_id)
        allowed = session is not None and (
            session.user_id == principal.user_id or (admin_may and principal.is_admin)
        )
        if session is None or not allowed:
            raise ApiError.not_found("Session")
        self._remember(session)
        return session

    async def current_session(self, principal: Principal) -> BotSession:
        async with self.db.unit() as uow:
            session = await uow.conversations.latest_active_for_user(
                principal.user_id, self.clock.now()
            )
        if session is None:
            raise ApiError.not_found("Active session")
        return session

    async def list_sessions(
        self, principal: Principal, limit: int, offset: int
    ) -> tuple[list[BotSession], int]:
        async with self.db.unit() as uow:
            return await uow.conversations.page_for_user(principal.user_id, limit, offset)

    async def end_session(self, principal: Principal, session_id: str) -> None:
        session = await self.owned_session(principal, session_id, admin_may=True)
        async with self.locks.hold(session.id), self.db.unit() as uow:
            stored = await uow.conversations.get_session(session.id)
            if stored is None:
                raise ApiError.not_found("Session")
            stored.status = ENDED
            stored.ended_at = self.clock.now()
            await uow.audit.record(
                "session_deleted",
                self.clock.now(),
                user_id=stored.user_id,
                actor_id=principal.user_id,
                details={"session_id": stored.id},
            )
        await self.bus.publish(
            session_channel(session.id),
            {"type": "session_ended", "session_id": session.id, "reason": "ended"},
        )

    def is_live(self, session: BotSession) -> bool:
        return session.status == ACTIVE and utc(session.expires_at) > self.clock.now()

    # -- messages -----------------------------------------------------------

    async def history(
        self, principal: Principal, session_id: str, after_seq: int, limit: int
    ) -> list[dict[str, Any]]:
        await self.owned_session(principal, session_id, admin_may=True)
        return await self.messages_after(session_id, after_seq, limit)

    async def messages_after(self, session_id: str, after_seq: int, limit: int) -> list[dict]:
        async with self.db.unit() as uow:
            messages = await uow.conversations.messages_after(session_id, after_seq, limit)
        return [message_view(m) for m in messages]

    async def post(
        self,
        principal: Principal,
        session_id: str,
        content: str,
        *,
        client_id: str | None = None,
        origin: str | None = None,
        on_stored: Callable[[dict[str, Any], bool], Awaitable[None]] | None = None,
    ) -> PostResult:
        """Store a user message, then run the dialog turn it starts.

        `on_stored` runs after the message is durable and before the bot
        answers, so a socket can acknowledge it ahead of any reply.
        A resend with a known `client_id` is acknowledged again and answered
        with the replies it got the first time; it is never processed twice.
        """
        if len(content) > MAX_CONTENT:
            raise ApiError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"A message may hold at most {MAX_CONTENT} characters.",
                413,
            )
        async with self.locks.hold(session_id):
            stored = await self._store_user_message(principal, session_id, content, client_id)
            view = message_view(stored.message)
            if on_stored is not None:
                await on_stored(view, stored.duplicate)
            if stored.duplicate:
                async with self.db.unit() as uow:
                    replies = await uow.conversations.bot_replies_after(session_id, view["seq"])
                return PostResult(view, [message_view(m) for m in replies], duplicate=True)

            self.metrics.messages.labels("in").inc()
            channel = session_channel(session_id)
            await self.bus.publish(channel, {"type": "message", **view, "origin": origin})
            await self.bus.publish(
                channel, {"type": "typing", "session_id": session_id, "sender": "bot"}
            )
            outbox = _TurnOutbox(self, session_id, last_seq=view["seq"])
            await self._run_turn(stored.facts, stored.saved, content, outbox)
        return PostResult(view, outbox.sent)

    async def _store_user_message(
        self, principal: Principal, session_id: str, content: str, client_id: str | None
    ) -> _Stored:
        now = self.clock.now()
        facts = self._facts.get(session_id)
        if facts is not None and facts.user_id != principal.user_id:
            raise ApiError.not_found("Session")
        async with self.db.unit() as uow:
            repo = uow.conversations
            if facts is None:
                # Unknown here: read (and lock) the row once to learn whose it is.
                session = await repo.lock_session(session_id)
                if session is None or session.user_id != principal.user_id:
                    raise ApiError.not_found("Session")
                facts = self._remember(session)
            if client_id:
                existing = await repo.message_by_client_id(session_id, client_id)
                if existing is not None:
                    return _Stored(facts, existing, None, duplicate=True)
            # One UPDATE locks the row, takes the seq and moves the expiry, unless
            # the session has ended or expired.
            expires = await self._expiry(facts.bot_id, now)
            seq = await repo.reserve_seq_if_live(session_id, now, expires)
            if seq is None:
                # Rare: read the row to tell an ended session from an expired one.
                session = await repo.lock_session(session_id)
                if session is None:
                    raise ApiError.not_found("Session")
                if session.status != ACTIVE:
                    raise session_ended_error()
                session.status = EXPIRED
                session.ended_at = now
            else:
                message = await repo.add_message(
                    Message(
                        id=new_id("msg"),
                        session_id=session_id,
                        seq=seq,
                        sender="user",
                        content=content,
                        suggestions=[],
                        client_id=client_id,
                        created_at=now,
                    )
                )
                state = await self._saved_state(repo, session_id, seq)
        if seq is None:
            await self.bus.publish(
                session_channel(session_id),
                {"type": "session_ended", "session_id": session_id, "reason": "expired"},
            )
            raise session_ended_error()
        return _Stored(facts, message, state)

    async def _saved_state(
        self, repo: ConversationRepo, session_id: str, seq: int
    ) -> DialogState | None:
        """The dialog state the user message with `seq` resumes.

        The state a turn stored here is remembered with the session's last seq
        at that moment. Every turn, on any instance, takes a seq for its user
        message before it stores a state (only a new session's greeting does
        not, and it comes first), so when the seq just taken follows the
        remembered one directly, nobody has stored another state since and the
        database need not be asked.
        """
        remembered = self._states.pop(session_id, None)
        if remembered is not None and remembered[0] == seq - 1:
            return remembered[1]
        return await repo.dialog_state(session_id)

    def _stored_state(self, session_id: str, last_seq: int, state: DialogState | None) -> None:
        """Remember the state a turn just committed (see `_saved_state`)."""
        # Through JSON, like the copy in the database, so that a resumed turn
        # sees the same values whether they came from memory or from storage.
        _keep(self._states, session_id, (last_seq, json.loads(json.dumps(state))), STATES_KEPT)

    async def _expiry(self, bot_id: str, now: datetime) -> datetime:
        bot = await self.bots.get(bot_id)
        return now + self._idle(bot.session_timeout_minutes if bot else None)

    async def _run_turn(
        self,
        session: SessionFacts,
        saved: DialogState | None,
        user_input: str | None,
        outbox: _TurnOutbox,
    ) -> None:
        bot = await self.bots.get(session.bot_id)
        package = self.bots.package(bot.name) if bot else None
        try:
            state = await self.runtime.turn(
                package,
                saved,
                user_input,
                outbox,
                bot_id=session.bot_id,
                user_id=session.user_id,
                session_id=session.id,
            )
        except BaseException:
            # Whatever the bot said before the failure is still delivered.
            await outbox.flush()
            raise
        await outbox.flush(state=state, save_state=True)

    async def typing(self, principal: Principal, session_id: str, origin: str) -> None:
        session = await self.owned_session(principal, session_id)
        if not self.is_live(session):
            raise session_ended_error()
        await self.bus.publish(
            session_channel(session.id),
            {"type": "typing", "session_id": session.id, "sender": "user", "origin": origin},
        )


def _keep(memory: dict[str, Kept], key: str, value: Kept, limit: int) -> Kept:
    """Remember `value` under `key`, forgetting the oldest entry once `limit` are kept."""
    if key not in memory and len(memory) >= limit:
        del memory[next(iter(memory))]
    memory[key] = value
    return value


@dataclass
class _Stored:
    facts: SessionFacts
    message: Message
    saved: DialogState | None
    duplicate: bool = False


class _TurnOutbox:
    """Collects a turn's bot messages; `flush` stores them (and the dialog state) in
    one transaction, then publishes them. Nothing is sent before it is stored.

    `stream` is the one exception, for text generated while the user waits.
    Its message's id and seq (the session's next) are chosen when the first
    piece arrives; the pieces are published as `delta` events with
    `is_complete: False` under that seq, and the whole text is then stored
    with the same seq and id and published as an ordinary, complete message.
    Concatenated, the deltas are exactly the stored content. Nothing else is
    stored while the stream runs (the session lock is held), and the seq is
    only taken when the message is stored, so a process dying mid-stream
    leaves no gap: the unfinished message is simply never completed.
    """

    def __init__(self, service: ConversationService, session_id: str, *, last_seq: int) -> None:
        self.service = service
        self.session_id = session_id
        self.last_seq = last_seq  # the newest seq stored, as this turn holds the lock
        self.pending: list[tuple[str, list[str]]] = []
        self.sent: list[dict[str, Any]] = []

    async def talk(self, content: str, suggestions: list[str]) -> None:
        self.pending.append((content, suggestions))

    async def flush(self, state: DialogState | None = None, *, save_state: bool = False) -> None:
        if not self.pending and not save_state:
            return
        service = self.service
        now = service.clock.now()
        pending, self.pending = self.pending, []
        async with service.db.unit() as uow:
            stored: list[Message] = []
            if pending:
                first = await uow.conversations.reserve_seqs(self.session_id, len(pending))
                stored = [
                    self._message(new_id("msg"), first + offset, content, suggestions)
                    for offset, (content, suggestions) in enumerate(pending)
                ]
                await uow.conversations.add_messages(stored)
            if save_state:
                dialog, values = state if state else ("", None)
                await uow.conversations.save_dialog_state(self.session_id, dialog, values, now)
        if stored:
            self.last_seq = stored[-1].seq
        for message in stored:
            await self._publish(message)
        if save_state:
            service._stored_state(self.session_id, self.last_seq, state)

    async def stream(self, chunks: AsyncIterator[str], suggestions: list[str]) -> str:
        # What the bot said before must reach the user before the wait for the model.
        await self.flush()
        channel = session_channel(self.session_id)
        bus = self.service.bus
        received: list[str] = []
        unsent = ""
        reserved: tuple[str, int] | None = None
        last_sent = time.monotonic()
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if reserved is None:
                    reserved = await self._reserve()
                received.append(chunk)
                unsent += chunk
                now = time.monotonic()
                if len(unsent) >= DELTA_CHARS or now - last_sent >= DELTA_SECONDS:
                    await bus.publish(channel, self._delta(reserved, unsent))
                    unsent, last_sent = "", now
        finally:
            close = getattr(chunks, "aclose", None)
            if close is not None:
                await close()
            # Also on failure: the user gets a complete message holding what arrived.
            if reserved is not None:
                if unsent:
                    await bus.publish(channel, self._delta(reserved, unsent))
                await self._store_streamed(reserved, "".join(received), suggestions)
        text = "".join(received)
        if reserved is None:  # an empty answer is said like TALK ""
            await self.talk(text, suggestions)
        return text

    async def _reserve(self) -> tuple[str, int]:
        """The id and seq the streamed message will be stored under.

        Nothing is written yet: the turn holds the session's lock, so the next
        seq cannot be taken by anyone else, and a crash mid-stream leaves no
        gap behind — only deltas of a message that never completed.
        """
        async with self.service.db.unit() as uow:
            seq = await uow.conversations.last_seq(self.session_id) + 1
        return new_id("msg"), seq

    def _delta(self, reserved: tuple[str, int], text: str) -> dict[str, Any]:
        message_id, seq = reserved
        return {
            "type": "message",
            "session_id": self.session_id,
            "message_id": message_id,
            "seq": seq,
            "sender": "bot",
            "delta": text,
            "is_complete": False,
        }

    async def _store_streamed(
        self, reserved: tuple[str, int], content: str, suggestions: list[str]
    ) -> None:
        message_id, announced = reserved
        async with self.service.db.unit() as uow:
            seq = await uow.conversations.reserve_seqs(self.session_id)
            message = await uow.conversations.add_message(
                self._message(message_id, seq, content, suggestions)
            )
        if seq != announced:  # pragma: no cover - only if the session lock was not held
            logger.warning("Streamed message %s was announced as seq %s.", message_id, announced)
        self.last_seq = seq
        await self._publish(message)

    def _message(self, message_id: str, seq: int, content: str, suggestions: list[str]) -> Message:
        return Message(
            id=message_id,
            session_id=self.session_id,
            seq=seq,
            sender="bot",
            content=content,
            suggestions=suggestions,
            client_id=None,
            created_at=self.service.clock.now(),
        )

    async def _publish(self, message: Message) -> None:
        view = message_view(message)
        self.service.metrics.messages.labels("out").inc()
        await self.service.bus.publish(
            session_channel(self.session_id), {"type": "message", **view, "is_complete": True}
        )
        self.sent.append(view)
