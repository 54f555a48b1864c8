"""The services one running app holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

from botserver.clock import Clock
from botserver.config import Settings
from botserver.metrics import Metrics
from botserver.services.groups import GroupService
from botserver.services.login_sessions import LoginSessionService
from botserver.services.ratelimit import RateLimiter
from botserver.services.users import UserService
from botserver.storage.db import Database


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    login_sessions: LoginSessionService
    users: UserService
    groups: GroupService
    rate_limiter: RateLimiter
    metrics: Metrics = field(default_factory=Metrics)
    started_monotonic: float = field(default_factory=monotonic)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        db = Database(settings.database_url)
        metrics = Metrics()
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            login_sessions=LoginSessionService(db, clock, settings),
            users=UserService(db, clock),
            groups=GroupService(db, clock),
            rate_limiter=RateLimiter(settings, clock, metrics),
            metrics=metrics,
        )

    async def close(self) -> None:
        await self.rate_limiter.close()
        await self.db.dispose()
