"""Local user accounts: creation, roles and the first-start admin."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from botserver.clock import Clock
from botserver.errors import ApiError
from botserver.services.passwords import hash_password
from botserver.services.principal import ADMIN_ROLE
from botserver.storage.db import Database
from botserver.storage.models import User, new_id

logger = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,149}$")
ROLES = ("user", ADMIN_ROLE)


@dataclass(frozen=True)
class BootstrapResult:
    username: str
    password: str
    generated: bool


class UserService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(
        self,
        username: str,
        *,
        email: str | None = None,
        password: str | None = None,
        roles: list[str] | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> User:
        if not USERNAME.match(username):
            raise ApiError.bad_request(
                "A username is 1-150 letters, digits or . _ @ - and starts with a letter or digit."
            )
        for role in roles or []:
            if role not in ROLES:
                raise ApiError.bad_request(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        now = self.clock.now()
        async with self.db.unit() as uow:
            if await uow.users.by_username(username):
                raise ApiError.conflict(f"User {username!r} already exists.")
            user = await uow.users.add(
                User(
                    id=new_id("user"),
                    username=username,
                    email=email,
                    first_name=first_name,
                    last_name=last_name,
                    roles=list(roles or ["user"]),
                    password_hash=hash_password(password) if password else None,
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        return user

    async def get_by_username(self, username: str) -> User:
        async with self.db.unit() as uow:
            user = await uow.users.by_username(username)
        if user is None:
            raise ApiError.not_found("User")
        return user

    async def list(self, limit: int = 100, offset: int = 0) -> tuple[list[User], int]:
        async with self.db.unit() as uow:
            return await uow.users.page(limit, offset), await uow.users.count()

    async def set_role(self, username: str, role: str, *, actor_id: str | None = None) -> User:
        """Makes `role` the user's only role ('user' or 'admin')."""
        if role not in ROLES:
            raise ApiError.bad_request(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        async with self.db.unit() as uow:
            user = await uow.users.by_username(username)
            if user is None:
                raise ApiError.not_found("User")
            previous = list(user.roles or [])
            user.roles = [role]
            user.updated_at = self.clock.now()
            await uow.audit.record(
                "role_changed",
                self.clock.now(),
                user_id=user.id,
                actor_id=actor_id,
                details={"from": previous, "to": [role]},
            )
        return user

    async def bootstrap_admin(self, password: str | None) -> BootstrapResult | None:
        """On a first start (no users at all) create `admin`; None when users exist."""
        async with self.db.unit() as uow:
            if await uow.users.count():
                return None
        generated = not password
        password = password or secrets.token_urlsafe(12)
        await self.create("admin", password=password, roles=[ADMIN_ROLE])
        logger.info("Created the first administrator account 'admin'.")
        return BootstrapResult("admin", password, generated)
