from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.models import Bot


class BotRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, bot_id: str) -> Bot | None:
        return await self.session.get(Bot, bot_id)

    async def by_name(self, name: str) -> Bot | None:
        result = await self.session.execute(select(Bot).where(Bot.name == name))
        return result.scalar_one_or_none()

    async def all(self) -> list[Bot]:
        result = await self.session.execute(select(Bot).order_by(Bot.name))
        return list(result.scalars())

    async def add(self, bot: Bot) -> Bot:
        self.session.add(bot)
        await self.session.flush()
        return bot
