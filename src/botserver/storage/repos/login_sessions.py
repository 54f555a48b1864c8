from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.models import LoginSession, User


class LoginSessionRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, login: LoginSession) -> LoginSession:
        self.session.add(login)
        await self.session.flush()
        return login

    async def with_user(self, token_hash: str) -> tuple[LoginSession, User] | None:
        result = await self.session.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == token_hash)
        )
        row = result.first()
        return (row[0], row[1]) if row else None

    async def revoke(self, token_hash: str, when: datetime) -> str | None:
        """Revoke a live login session; answers its id, or None when none was live."""
        result = await self.session.execute(
            update(LoginSession)
            .where(LoginSession.token_hash == token_hash, LoginSession.revoked_at.is_(None))
            .values(revoked_at=when)
            .returning(LoginSession.id)
        )
        return result.scalar_one_or_none()

    async def revoke_all_for_user(self, user_id: str, when: datetime) -> None:
        await self.session.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=when)
        )

    async def purge_expired(self, before: datetime) -> None:
        await self.session.execute(delete(LoginSession).where(LoginSession.expires_at < before))
