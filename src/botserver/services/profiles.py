"""The signed-in user's own profile: read it, and write changes to the directory.

The embedded directory is our own tables. With an external directory the
change goes to its SCIM API first (when BOTSERVER_SCIM_URL is set) and the
local copy follows only once the directory accepted it; without SCIM the
external directory stays the source of truth and we refuse to diverge.
"""

from __future__ import annotations

import logging

from botserver.clock import Clock
from botserver.config import Settings
from botserver.directory.scim import ScimDirectory, ScimUnavailable
from botserver.errors import ApiError, ErrorCode
from botserver.storage.db import Database
from botserver.storage.models import User

logger = logging.getLogger(__name__)


class ProfileService:
    def __init__(
        self, db: Database, clock: Clock, settings: Settings, scim: ScimDirectory | None
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.scim = scim

    async def get(self, user_id: str) -> User:
        async with self.db.unit() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise ApiError.not_found("User")
        return user

    async def update(self, user_id: str, changes: dict[str, str | None]) -> User:
        """Apply `changes` (email, first_name, last_name) in the directory, then locally."""
        user = await self.get(user_id)
        if changes and user.issuer is not None:
            if self.scim is None:
                raise ApiError(
                    ErrorCode.CONFLICT,
                    "Your profile is managed by the external directory; change it there.",
                    409,
                )
            try:
                await self.scim.update_user(user.subject or user.username, user.username, changes)
            except ScimUnavailable as exc:
                raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, str(exc), 503) from exc

        async with self.db.unit() as uow:
            stored = await uow.users.get(user_id)
            if stored is None:
                raise ApiError.not_found("User")
            for field, value in changes.items():
                setattr(stored, field, value)
            stored.updated_at = self.clock.now()
            await uow.audit.record(
                "profile_updated",
                self.clock.now(),
                user_id=user_id,
                actor_id=user_id,
                details={"fields": sorted(changes)},
            )
        return stored
