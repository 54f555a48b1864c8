"""The services one running app holds, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import monotonic

from botserver.clock import Clock
from botserver.config import Settings
from botserver.directory.embedded.keys import SigningKeys
from botserver.directory.embedded.provider import EmbeddedProvider
from botserver.directory.oidc import ClientConfig, OidcClient
from botserver.directory.scim import ScimDirectory
from botserver.metrics import Metrics
from botserver.services.login_sessions import LoginSessionService
from botserver.services.profiles import ProfileService
from botserver.services.signin import SignInService
from botserver.services.users import UserService
from botserver.storage.db import Database


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    login_sessions: LoginSessionService
    users: UserService
    # Sign-in: the embedded provider is mounted even with an external issuer (it serves
    # no one then); `oidc.transport` can be swapped to route the issuer in-process.
    directory: EmbeddedProvider
    oidc: OidcClient
    signin: SignInService
    profiles: ProfileService
    metrics: Metrics = field(default_factory=Metrics)
    started_monotonic: float = field(default_factory=monotonic)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        db = Database(settings.database_url)
        login_sessions = LoginSessionService(db, clock, settings)
        oidc = OidcClient(ClientConfig.from_settings(settings), clock)
        scim = ScimDirectory(settings.scim_url, settings.scim_token) if settings.scim_url else None
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            login_sessions=login_sessions,
            users=UserService(db, clock),
            directory=EmbeddedProvider(db, clock, settings, SigningKeys(db, clock)),
            oidc=oidc,
            signin=SignInService(db, clock, settings, oidc, login_sessions),
            profiles=ProfileService(db, clock, settings, scim),
        )

    async def close(self) -> None:
        await self.db.dispose()
