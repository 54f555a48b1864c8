"""Rate-limit tiers on top of the `limits` library (its asyncio API).

Design notes
------------
* Three tiers (CLARIFICATIONS §10): ``public`` counts per client address,
  ``authenticated`` and ``admin`` count per user. Each tier's limit is one
  item in the `limits` notation, e.g. ``60/hour``, taken from the settings.
* Strategy: a fixed window *aligned to the injected clock*. The window a hit
  falls in is ``floor(now / period)``, and its number is part of the storage
  key, so the counter of the next window starts at zero without any expiry
  having to fire. Time therefore comes only from `Clock`: tests advance a
  `FrozenClock` instead of sleeping, and every instance agrees on when a
  window ends (that moment is ``X-RateLimit-Reset``). The storage's own
  expiry (real time, at least one period) only collects old keys.
* Storage: `limits`' asyncio memory storage by default; its asyncio Redis
  storage (redis-py client) when ``BOTSERVER_REDIS_URL`` is set, so every
  instance spends one shared budget. One ``INCR`` per hit, nothing else.
* When the storage fails (Redis down) requests are let through: an outage
  of the limiter must not become an outage of the service. The failure is
  logged once per outage and the admin status check reports it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import RateLimiter as LimitsStrategy
from limits.errors import StorageError
from limits.util import WindowStats
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from botserver.clock import Clock
from botserver.config import Settings, parse_limit, parse_networks
from botserver.metrics import Metrics
from botserver.services.principal import Principal

logger = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "botserver:limits"


class Tier(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    ADMIN = "admin"


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit: whether it may proceed and what the headers say."""

    allowed: bool
    tier: Tier
    limit: int
    remaining: int
    reset: int  # Unix seconds at which the current window ends and slots free up
    retry_after: int  # seconds to wait before trying again; 0 when allowed

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class ClockFixedWindow(LimitsStrategy):
    """A `limits` strategy: fixed windows aligned to an injected clock (see module notes)."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        super().__init__(storage)
        self.clock = clock

    def _window(self, item: RateLimitItem) -> tuple[int, float]:
        period = item.get_expiry()
        index = math.floor(self.clock.timestamp() / period)
        return index, float((index + 1) * period)

    def _key(self, item: RateLimitItem, index: int, identifiers: tuple[str, ...]) -> str:
        return item.key_for(*identifiers, str(index))

    async def acquire(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> int:
        """Spend `cost` and return the window's count after it (may exceed the limit)."""
        index, _ = self._window(item)
        return await self.storage.incr(
            self._key(item, index, identifiers), item.get_expiry(), amount=cost
        )

    async def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        return await self.acquire(item, *identifiers, cost=cost) <= item.amount

    async def test(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        index, _ = self._window(item)
        used = await self.storage.get(self._key(item, index, identifiers))
        return used + cost <= item.amount

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        index, reset = self._window(item)
        used = await self.storage.get(self._key(item, index, identifiers))
        return WindowStats(reset, max(0, item.amount - used))

    def window_end(self, item: RateLimitItem) -> float:
        return self._window(item)[1]


def _build_storage(redis_url: str | None) -> Storage:
    if not redis_url:
        return MemoryStorage()
    # Fail fast while Redis is away (no back-off between retries): the limiter
    # lets requests through then, and a slow refusal would stall every request.
    return RedisStorage(
        "async+" + redis_url,
        wrap_exceptions=True,
        implementation="redispy",
        key_prefix=REDIS_KEY_PREFIX,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 1),  # type: ignore[arg-type]
    )


class RateLimiter:
    """Counts requests and socket messages against the tiers; shared by HTTP and WebSocket."""

    def __init__(self, settings: Settings, clock: Clock, metrics: Metrics) -> None:
        self.clock = clock
        self.metrics = metrics
        self.items = {
            Tier.PUBLIC: parse_limit("rate_limit_public", settings.rate_limit_public),
            Tier.AUTHENTICATED: parse_limit(
                "rate_limit_authenticated", settings.rate_limit_authenticated
            ),
            Tier.ADMIN: parse_limit("rate_limit_admin", settings.rate_limit_admin),
        }
        self.uses_redis = bool(settings.redis_url)
        self.storage = _build_storage(settings.redis_url)
        self.strategy = ClockFixedWindow(self.storage, clock)
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.exempt = tuple(path.rstrip("/") or "/" for path in settings.rate_limit_exempt)
        self._storage_failing = False

    def is_exempt(self, path: str) -> bool:
        return any(path == base or path.startswith(base.rstrip("/") + "/") for base in self.exempt)

    @staticmethod
    def tier_for(principal: Principal | None) -> Tier:
        if principal is None:
            return Tier.PUBLIC
        return Tier.ADMIN if principal.is_admin else Tier.AUTHENTICATED

    async def hit_principal(
        self, principal: Principal | None, address: str | None = None
    ) -> Decision:
        """Spend one request or message: a signed-in user's own budget, else the address's."""
        if principal is not None:
            return await self.hit(self.tier_for(principal), principal.user_id)
        return await self.hit(Tier.PUBLIC, address or "unknown")

    async def hit(self, tier: Tier, subject: str, *, cost: int = 1) -> Decision:
        """Spend `cost` from `subject`'s budget in `tier` (a user id, or an address for public)."""
        item = self.items[tier]
        reset = math.ceil(self.strategy.window_end(item))
        try:
            used = await self.strategy.acquire(item, tier.value, subject, cost=cost)
        except (StorageError, RedisError, OSError) as exc:
            self._report_failure(exc)
            return Decision(True, tier, item.amount, item.amount, reset, 0)
        self._report_recovery()

        allowed = used <= item.amount
        if not allowed:
            self.metrics.rate_limited.labels(tier=tier.value).inc()
        retry_after = 0 if allowed else max(1, math.ceil(reset - self.clock.timestamp()))
        return Decision(allowed, tier, item.amount, max(0, item.amount - used), reset, retry_after)

    async def check(self) -> bool:
        """True when the storage answers (always, for the memory storage)."""
        try:
            return bool(await self.storage.check())
        except (StorageError, RedisError, OSError):
            return False

    async def close(self) -> None:
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    def _report_failure(self, exc: BaseException) -> None:
        if not self._storage_failing:
            self._storage_failing = True
            logger.warning(
                "The rate-limit storage failed (%s); requests pass unlimited until it returns.",
                type(exc).__name__,
            )

    def _report_recovery(self) -> None:
        if self._storage_failing:
            self._storage_failing = False
            logger.warning("The rate-limit storage answers again; limits apply.")
