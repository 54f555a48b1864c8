from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.models import User


class UserRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        return await self.session.get(User, user_id)

    async def by_username(self, username: str, *, for_update: bool = False) -> User | None:
        """The account; `for_update` holds its row until the transaction ends (PostgreSQL)."""
        query = select(User).where(User.username == username)
        if for_update:
            query = query.with_for_update()
        result = await self.session.execute(query)
        return result.scalar_one_or_none()

    async def by_subject(self, issuer: str, subject: str) -> User | None:
        result = await self.session.execute(
            select(User).where(User.issuer == issuer, User.subject == subject)
        )
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(User)) or 0)

    async def page(self, limit: int, offset: int) -> list[User]:
        result = await self.session.execute(
            select(User).order_by(User.created_at, User.id).limit(limit).offset(offset)
        )
        return list(result.scalars())
