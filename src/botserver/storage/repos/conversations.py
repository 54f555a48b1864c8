"""Bot sessions, their messages and dialog state: one aggregate, one repository."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.models import BotSession, DialogState, Message

# Hot paths use plain Core statements on these tables: no identity map, no flush.
SESSIONS = cast(Table, BotSession.__table__)
MESSAGES = cast(Table, Message.__table__)
STATES = cast(Table, DialogState.__table__)

# Every message runs the statements below, so they are built once, with bound
# parameters: building a statement and its cache key costs more CPU than
# SQLite takes to run it.
_RESERVE_SEQS = (
    update(SESSIONS)
    .where(SESSIONS.c.id == bindparam("session_id"))
    .values(last_seq=SESSIONS.c.last_seq + bindparam("count", type_=SESSIONS.c.last_seq.type))
    .returning(SESSIONS.c.last_seq)
)
_RESERVE_SEQ_IF_LIVE = (
    update(SESSIONS)
    .where(
        SESSIONS.c.id == bindparam("session_id"),
        SESSIONS.c.status == "active",
        SESSIONS.c.expires_at > bindparam("now"),
    )
    .values(
        last_seq=SESSIONS.c.last_seq + 1,
        last_activity_at=bindparam("now", type_=SESSIONS.c.last_activity_at.type),
        expires_at=bindparam("expires", type_=SESSIONS.c.expires_at.type),
    )
    .returning(SESSIONS.c.last_seq)
)
_INSERT_MESSAGE = insert(MESSAGES)
_SELECT_STATE = select(STATES.c.dialog, STATES.c.state).where(
    STATES.c.session_id == bindparam("session_id")
)
_UPDATE_STATE = (
    update(STATES)
    .where(STATES.c.session_id == bindparam("of_session"))
    .values(
        dialog=bindparam("new_dialog", type_=STATES.c.dialog.type),
        state=bindparam("new_state", type_=STATES.c.state.type),
        updated_at=bindparam("now", type_=STATES.c.updated_at.type),
    )
)
_INSERT_STATE = insert(STATES)
_DELETE_STATE = delete(STATES).where(STATES.c.session_id == bindparam("session_id"))


class ConversationRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_session(self, bot_session: BotSession) -> BotSession:
        self.session.add(bot_session)
        await self.session.flush()
        return bot_session

    async def get_session(self, session_id: str) -> BotSession | None:
        return await self.session.get(BotSession, session_id)

    async def lock_session(self, session_id: str) -> BotSession | None:
        """Read a session for update (a row lock on PostgreSQL; SQLite serialises writers)."""
        result = await self.session.execute(
            select(BotSession).where(BotSession.id == session_id).with_for_update()
        )
        return result.scalar_one_or_none()

    async def latest_active_for_user(self, user_id: str, now: datetime) -> BotSession | None:
        result = await self.session.execute(
            select(BotSession)
            .where(
                BotSession.user_id == user_id,
                BotSession.status == "active",
                BotSession.expires_at > now,
            )
            .order_by(BotSession.last_activity_at.desc(), BotSession.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def page_for_user(
        self, user_id: str, limit: int, offset: int
    ) -> tuple[list[BotSession], int]:
        query = select(BotSession).where(BotSession.user_id == user_id)
        total = await self.session.scalar(select(func.count()).select_from(query.subquery()))
        result = await self.session.execute(
            query.order_by(BotSession.last_activity_at.desc(), BotSession.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(result.scalars()), int(total or 0)

    async def reserve_seqs(self, session_id: str, count: int = 1) -> int:
        """Reserve the session's next `count` sequence numbers; returns the first.

        The increment happens in the database inside the caller's transaction,
        so concurrent writers (on any instance) can never get the same number,
        and a rolled-back transaction gives its numbers back: no gaps.
        """
        result = await self.session.execute(
            _RESERVE_SEQS, {"session_id": session_id, "count": count}
        )
        return int(result.scalar_one()) - count + 1

    async def last_seq(self, session_id: str) -> int:
        result = await self.session.execute(
            select(SESSIONS.c.last_seq).where(SESSIONS.c.id == session_id)
        )
        return int(result.scalar_one())

    async def reserve_seq_if_live(
        self, session_id: str, now: datetime, expires_at: datetime
    ) -> int | None:
        """Reserve the next seq and record activity, in one statement, for an active,
        unexpired session only; None otherwise.

        The UPDATE takes the row lock (PostgreSQL) that `lock_session` would, so
        a live session needs no SELECT before it.
        """
        result = await self.session.execute(
            _RESERVE_SEQ_IF_LIVE, {"session_id": session_id, "now": now, "expires": expires_at}
        )
        seq = result.scalar_one_or_none()
        return None if seq is None else int(seq)

    async def add_message(self, message: Message) -> Message:
        """Insert a message (a plain INSERT: messages are never updated)."""
        await self.add_messages([message])
        return message

    async def add_messages(self, messages: list[Message]) -> None:
        """Insert messages in one round trip to the database."""
        await self.session.execute(
            _INSERT_MESSAGE,
            [
                {
                    "id": message.id,
                    "session_id": message.session_id,
                    "seq": message.seq,
                    "sender": message.sender,
                    "content": message.content,
                    "suggestions": message.suggestions,
                    "client_id": message.client_id,
                    "created_at": message.created_at,
                }
                for message in messages
            ],
        )

    async def message_by_client_id(self, session_id: str, client_id: str) -> Message | None:
        result = await self.session.execute(
            select(Message).where(Message.session_id == session_id, Message.client_id == client_id)
        )
        return result.scalar_one_or_none()

    async def messages_after(self, session_id: str, after_seq: int, limit: int) -> list[Message]:
        result = await self.session.execute(
            select(Message)
            .where(Message.session_id == session_id, Message.seq > after_seq)
            .order_by(Message.seq)
            .limit(limit)
        )
        return list(result.scalars())

    async def bot_replies_after(self, session_id: str, seq: int) -> list[Message]:
        """The bot messages that followed a user message, up to the next user message."""
        later = await self.messages_after(session_id, seq, 1000)
        replies: list[Message] = []
        for message in later:
            if message.sender != "bot":
                break
            replies.append(message)
        return replies

    async def dialog_state(self, session_id: str) -> tuple[str, dict[str, Any]] | None:
        """The dialog a session waits in and the interpreter's state, if it waits."""
        result = await self.session.execute(_SELECT_STATE, {"session_id": session_id})
        row = result.first()
        return (row.dialog, row.state) if row else None

    async def save_dialog_state(
        self, session_id: str, dialog: str, state: dict[str, Any] | None, now: datetime
    ) -> None:
        """Store where the dialog waits, or forget it when the dialog ended (`state` None)."""
        if state is None:
            await self.session.execute(_DELETE_STATE, {"session_id": session_id})
            return
        result = await self.session.execute(
            _UPDATE_STATE,
            {"of_session": session_id, "new_dialog": dialog, "new_state": state, "now": now},
        )
        if not getattr(result, "rowcount", 0):
            await self.session.execute(
                _INSERT_STATE,
                {"session_id": session_id, "dialog": dialog, "state": state, "updated_at": now},
            )
