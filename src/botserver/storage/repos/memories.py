"""BOT MEMORY and USER MEMORY values that dialogs keep between sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.models import BotMemory, UserMemory


class MemoryRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_bot(self, bot_id: str, key: str) -> Any:
        row = await self.session.get(BotMemory, (bot_id, key))
        return row.value if row else None

    async def set_bot(self, bot_id: str, key: str, value: Any, now: datetime) -> None:
        row = await self.session.get(BotMemory, (bot_id, key))
        if row is None:
            self.session.add(BotMemory(bot_id=bot_id, key=key, value=value, updated_at=now))
        else:
            row.value = value
            row.updated_at = now

    async def get_user(self, bot_id: str, user_id: str, key: str) -> Any:
        row = await self.session.get(UserMemory, (bot_id, user_id, key))
        return row.value if row else None

    async def set_user(
        self, bot_id: str, user_id: str, key: str, value: Any, now: datetime
    ) -> None:
        row = await self.session.get(UserMemory, (bot_id, user_id, key))
        if row is None:
            self.session.add(
                UserMemory(bot_id=bot_id, user_id=user_id, key=key, value=value, updated_at=now)
            )
        else:
            row.value = value
            row.updated_at = now
