"""The services one running app holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

from botserver.bus import Bus
from botserver.bus.memory import MemoryBus
from botserver.bus.redis import RedisBus
from botserver.clock import Clock
from botserver.config import Settings
from botserver.directory.embedded.keys import SigningKeys
from botserver.directory.embedded.provider import EmbeddedProvider
from botserver.directory.oidc import ClientConfig, OidcClient
from botserver.directory.scim import ScimDirectory
from botserver.engine.runtime import DialogRuntime
from botserver.metrics import Metrics
from botserver.services.bots import BotService
from botserver.services.conversations import ConversationService
from botserver.services.groups import GroupService
from botserver.services.locks import AdvisorySessionLocks, LocalSessionLocks, SessionLocks
from botserver.services.login_sessions import LoginSessionService
from botserver.services.profiles import ProfileService
from botserver.services.ratelimit import RateLimiter
from botserver.services.signin import SignInService
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
    # Sign-in. The embedded provider's routes answer 404 while an external issuer is
    # configured; tests swap `oidc.transport` to reach the issuer in process.
    directory: EmbeddedProvider
    oidc: OidcClient
    signin: SignInService
    profiles: ProfileService
    locks: SessionLocks
    started_monotonic: float = field(default_factory=monotonic)
    socket_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        db = Database(settings.database_url)
        metrics = Metrics()
        # Many instances share Redis for events and PostgreSQL for ordering;
        # one instance on SQLite needs neither.
        bus: Bus = RedisBus(settings.redis_url) if settings.redis_url else MemoryBus()
        locks: SessionLocks = (
            LocalSessionLocks() if db.is_sqlite else AdvisorySessionLocks(settings.database_url)
        )
        bots = BotService(db, clock, settings.bots_dir, bus)
        runtime = DialogRuntime(db, clock)
        groups = GroupService(db, clock)
        conversations = ConversationService(
            db,
            clock,
            bus,
            locks,
            bots,
            runtime,
            metrics,
            idle_minutes=settings.session_idle_minutes,
            group_names=groups.group_names_for,
        )
        login_sessions = LoginSessionService(db, clock, settings, bus)
        oidc = OidcClient(ClientConfig.from_settings(settings), clock)
        scim = ScimDirectory(settings.scim_url, settings.scim_token) if settings.scim_url else None
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            bus=bus,
            login_sessions=login_sessions,
            users=UserService(db, clock),
            bots=bots,
            conversations=conversations,
            groups=groups,
            rate_limiter=RateLimiter(settings, clock, metrics),
            metrics=metrics,
            directory=EmbeddedProvider(db, clock, settings, SigningKeys(db, clock)),
            oidc=oidc,
            signin=SignInService(db, clock, settings, oidc, login_sessions),
            profiles=ProfileService(db, clock, settings, scim),
            locks=locks,
        )

    @property
    def redis_healthy(self) -> bool | None:
        """None without Redis; otherwise whether events reach the other instances now."""
        if isinstance(self.bus, RedisBus):
            return self.bus.healthy
        return None

    async def start(self) -> None:
        await self.db.migrate()
        await self.bus.start()
        await self.bots.reload(announce=False)
        self.bots.follow_reloads()

    async def close(self) -> None:
        self.bots.stop_following()
        await self.bus.close()
        if isinstance(self.locks, AdvisorySessionLocks):
            await self.locks.close()
        await self.rate_limiter.close()
        await self.conversations.runtime.close()
        await self.db.dispose()
