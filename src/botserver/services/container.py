"""The services one running app holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

from botserver.bus import Bus
from botserver.bus.memory import MemoryBus
from botserver.clock import Clock
from botserver.config import Settings
from botserver.engine.runtime import DialogRuntime
from botserver.metrics import Metrics
from botserver.services.bots import BotService
from botserver.services.conversations import ConversationService
from botserver.services.groups import GroupService
from botserver.services.locks import LocalSessionLocks
from botserver.services.login_sessions import LoginSessionService
from botserver.services.ratelimit import RateLimiter
from botserver.services.users import UserService
from botserver.storage.db import Database


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    bus: Bus
    login_sessions: LoginSessionService
    users: UserService
    bots: BotService
    conversations: ConversationService
    groups: GroupService
    rate_limiter: RateLimiter
    metrics: Metrics
    started_monotonic: float = field(default_factory=monotonic)
    socket_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        db = Database(settings.database_url)
        metrics = Metrics()
        bus = MemoryBus()
        bots = BotService(db, clock, settings.bots_dir)
        runtime = DialogRuntime(db, clock)
        groups = GroupService(db, clock)
        conversations = ConversationService(
            db,
            clock,
            bus,
            LocalSessionLocks(),
            bots,
            runtime,
            metrics,
            idle_minutes=settings.session_idle_minutes,
            group_names=groups.group_names_for,
        )
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            bus=bus,
            login_sessions=LoginSessionService(db, clock, settings),
            users=UserService(db, clock),
            bots=bots,
            conversations=conversations,
            groups=groups,
            rate_limiter=RateLimiter(settings, clock, metrics),
            metrics=metrics,
        )

    async def start(self) -> None:
        await self.db.migrate()
        await self.bus.start()
        await self.bots.reload()

    async def close(self) -> None:
        await self.bus.close()
        await self.rate_limiter.close()
        await self.conversations.runtime.close()
        await self.db.dispose()
