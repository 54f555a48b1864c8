"""Login sessions: opaque bearer tokens, stored only as SHA-256 hashes.

A token is 256 random bits. The database never sees it, only its hash, so a
leaked table cannot be replayed. Validation reads the database every time,
which makes expiry and revocation take effect everywhere at once, on every
instance. A revocation is also published on the bus (`login_channel`), so
open sockets signed in by that login close at once instead of at their
next frame.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from botserver.bus import Bus, login_channel
from botserver.clock import Clock, utc
from botserver.config import Settings
from botserver.services.principal import Principal
from botserver.storage.db import Database
from botserver.storage.models import LoginSession, new_id

TOKEN_PREFIX = "bst_"  # noqa: S105 - a prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedLogin:
    token: str
    session: LoginSession


class LoginSessionService:
    def __init__(self, db: Database, clock: Clock, settings: Settings, bus: Bus) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.bus = bus

    async def issue(self, user_id: str, *, id_token: str | None = None) -> IssuedLogin:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        login = LoginSession(
            id=new_id("login"),
            token_hash=hash_token(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(hours=self.settings.login_session_hours),
            id_token=id_token,
        )
        async with self.db.unit() as uow:
            await uow.login_sessions.add(login)
        return IssuedLogin(token=token, session=login)

    async def authenticate(self, token: str, *, via: str = "bearer") -> Principal | None:
        """The principal behind a token, or None when it is unknown, expired or revoked."""
        if not token or len(token) > 256:
            return None
        async with self.db.unit() as uow:
            found = await uow.login_sessions.with_user(hash_token(token))
        if found is None:
            return None
        login, user = found
        if login.revoked_at is not None or utc(login.expires_at) <= self.clock.now():
            return None
        return Principal(
            user_id=user.id,
            username=user.username,
            roles=tuple(user.roles or ()),
            login_session_id=login.id,
            expires_at=utc(login.expires_at),
            via=via,
        )

    async def revoke(self, token: str) -> bool:
        """End a login session; false when the token names no live one."""
        async with self.db.unit() as uow:
            login_id = await uow.login_sessions.revoke(hash_token(token), self.clock.now())
        if login_id is None:
            return False
        # After the commit, so a socket that hears it and checks again sees it revoked.
        await self.bus.publish(login_channel(login_id), {"type": "login_revoked"})
        return True

    async def id_token_for(self, token: str) -> str | None:
        async with self.db.unit() as uow:
            found = await uow.login_sessions.with_user(hash_token(token))
        return found[0].id_token if found else None

    def csrf_token(self, login_session_id: str) -> str:
        """The double-submit CSRF value: bound to the login session, derivable by any instance."""
        return hmac.new(
            self.settings.secret_key.encode(), f"csrf:{login_session_id}".encode(), "sha256"
        ).hexdigest()
