"""All settings, read once from `BOTSERVER_*` environment variables and `.env`."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from limits import RateLimitItem, parse_many
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET = "insecure-development-secret"  # noqa: S105 - refused in production


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigError(Exception):
    """A setting makes it unsafe or impossible to start."""


CommaList = Annotated[list[str], NoDecode]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RATE_LIMITS = ("rate_limit_public", "rate_limit_authenticated", "rate_limit_admin")


def invalid_settings(error: ValidationError) -> list[str]:
    """One line per setting that failed to parse, named as its environment variable.

    The values are left out: some settings hold passwords or carry them in a URL.
    """
    lines = []
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else "settings"
        message = problem["msg"]
        lines.append(f"BOTSERVER_{field.upper()} is not valid: {message[:1].lower()}{message[1:]}.")
    return lines


def parse_limit(setting: str, value: str) -> RateLimitItem:
    """One rate limit in the `limits` notation, such as ``60/hour``."""
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1:
        raise ConfigError(
            f"BOTSERVER_{setting.upper()} must be one limit such as '60/hour', not {value!r}."
        )
    return items[0]


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """`BOTSERVER_TRUSTED_PROXIES` entries: single addresses or CIDR blocks."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"BOTSERVER_TRUSTED_PROXIES holds {entry!r}, which is not an IP address or CIDR."
            ) from exc
    return tuple(networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOTSERVER_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    database_url: str = "sqlite+aiosqlite:///data/botserver.db"
    bots_dir: Path = Path("bots")
    redis_url: str | None = None
    cors_origins: CommaList = Field(default_factory=lambda: ["*"])
    secret_key: str = DEFAULT_SECRET
    log_level: str = "INFO"
    admin_password: str | None = None

    # Request and frame limits.
    max_body_bytes: int = 1024 * 1024
    ws_max_frame_bytes: int = 64 * 1024
    ws_ping_interval: float = 20.0
    ws_max_sockets_per_user: int = 20
    # Frames one socket may send per second; each frame past it is refused and counts as abuse.
    ws_max_frames_per_second: int = Field(default=100, ge=1)

    # Login sessions (see CLARIFICATIONS §1).
    login_session_hours: float = 24.0
    session_idle_minutes: float = 30.0
    trusted_proxies: CommaList = Field(default_factory=list)

    # Directory: the embedded provider unless an external issuer is named.
    oidc_issuer: str | None = None
    oidc_client_id: str = "botserver"
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid profile email"
    oidc_roles_claim: str = "roles"
    oidc_admin_role: str = "admin"
    scim_url: str | None = None
    scim_token: str | None = None
    # Embedded directory: slow down after repeated wrong passwords, then lock.
    login_slowdown_after: int = 3
    login_lockout_after: int = 5
    login_lockout_minutes: float = 15.0

    # Rate limits in the `limits` notation.
    rate_limit_public: str = "60/hour"
    rate_limit_authenticated: str = "1000/hour"
    rate_limit_admin: str = "5000/hour"
    # The chat page's own files are cheap and fetched on every visit; they spend no budget.
    rate_limit_exempt: CommaList = Field(default_factory=lambda: ["/health", "/static"])

    @field_validator("cors_origins", "trusted_proxies", "rate_limit_exempt", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def embedded_directory(self) -> bool:
        return not self.oidc_issuer

    @property
    def cors_wildcard(self) -> bool:
        return "*" in self.cors_origins

    def check(self) -> None:
        """Refuse settings the server cannot run with, or unsafe in production, in one line."""
        for setting in RATE_LIMITS:
            parse_limit(setting, getattr(self, setting))
        parse_networks(self.trusted_proxies)
        if not self.is_production:
            return
        if not self.secret_key or self.secret_key == DEFAULT_SECRET:
            raise ConfigError(
                "BOTSERVER_SECRET_KEY must be set to a private random value in production."
            )
        if len(self.secret_key) < 32:
            raise ConfigError("BOTSERVER_SECRET_KEY must be at least 32 characters in production.")
        if not self.cors_origins or self.cors_wildcard:
            raise ConfigError(
                "BOTSERVER_CORS_ORIGINS must list the allowed origins in production, not '*'."
            )
