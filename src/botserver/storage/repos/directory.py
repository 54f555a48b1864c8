"""Sign-in state: pending logins, signing keys, authorization codes and access tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.models import (
    AccessToken,
    AuthorizationCode,
    AuthState,
    LoginThrottle,
    SigningKey,
)


class DirectoryRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Pending browser sign-ins (the client side).

    async def add_state(self, state: AuthState) -> None:
        self.session.add(state)
        await self.session.flush()

    async def take_state(self, state_hash: str) -> AuthState | None:
        """Remove and return a pending sign-in; None when unknown or already taken."""
        found = await self.session.get(AuthState, state_hash)
        if found is None:
            return None
        result = await self.session.execute(
            delete(AuthState).where(AuthState.state_hash == state_hash)
        )
        return found if getattr(result, "rowcount", 0) == 1 else None

    async def purge_states(self, before: datetime) -> None:
        await self.session.execute(delete(AuthState).where(AuthState.expires_at < before))

    # Failed logins for usernames without an account (the embedded provider).

    async def throttle(self, username_hash: str, now: datetime) -> LoginThrottle:
        """The counter for a username, created at zero on first use, held until commit.

        Two first attempts for the same username may race: the insert leaves an
        existing row alone (on PostgreSQL it waits for the other transaction's
        row and then does nothing), so both read one counter instead of one of
        them failing on the primary key. The row is then read `FOR UPDATE`, so
        parallel attempts take turns instead of each counting from the same
        value; SQLite has no row locks and relies on `Database`'s single writer.
        """
        bind = self.session.get_bind()
        insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
        await self.session.execute(
            insert(LoginThrottle)
            .values(username_hash=username_hash, failed_logins=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=[LoginThrottle.username_hash])
        )
        found = await self.session.get(
            LoginThrottle, username_hash, populate_existing=True, with_for_update=True
        )
        assert found is not None  # inserted or left in place just above
        return found

    async def purge_throttles(self, before: datetime) -> None:
        await self.session.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < before))

    # Signing keys (the embedded provider).

    async def published_keys(self) -> list[SigningKey]:
        result = await self.session.execute(
            select(SigningKey)
            .where(SigningKey.retired_at.is_(None))
            .order_by(SigningKey.created_at.desc(), SigningKey.kid)
        )
        return list(result.scalars())

    async def add_key(self, key: SigningKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def deactivate_keys(self, except_kid: str) -> None:
        await self.session.execute(
            update(SigningKey)
            .where(SigningKey.kid != except_kid, SigningKey.active.is_(True))
            .values(active=False)
        )

    async def retire_inactive_keys(self, when: datetime) -> list[str]:
        result = await self.session.execute(
            select(SigningKey.kid).where(
                SigningKey.active.is_(False), SigningKey.retired_at.is_(None)
            )
        )
        kids = list(result.scalars())
        if kids:
            await self.session.execute(
                update(SigningKey).where(SigningKey.kid.in_(kids)).values(retired_at=when)
            )
        return kids

    # Authorization codes and access tokens (the embedded provider).

    async def add_code(self, code: AuthorizationCode) -> None:
        self.session.add(code)
        await self.session.flush()

    async def get_code(self, code_hash: str) -> AuthorizationCode | None:
        return await self.session.get(AuthorizationCode, code_hash)

    async def mark_code_used(self, code_hash: str, when: datetime) -> bool:
        """Claim a code; False when it was used before (a replay)."""
        result = await self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
            .values(used_at=when)
        )
        return getattr(result, "rowcount", 0) == 1

    async def add_access_token(self, token: AccessToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def get_access_token(self, token_hash: str) -> AccessToken | None:
        return await self.session.get(AccessToken, token_hash)

    async def revoke_tokens_from_code(self, code_hash: str, when: datetime) -> None:
        await self.session.execute(
            update(AccessToken)
            .where(AccessToken.code_hash == code_hash, AccessToken.revoked_at.is_(None))
            .values(revoked_at=when)
        )
