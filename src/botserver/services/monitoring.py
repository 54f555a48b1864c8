"""What admins see of the running system: dependency checks and a metrics summary.

Latency percentiles come from the request-latency histogram, the same way
Prometheus' ``histogram_quantile`` does it: find the bucket holding the
wanted rank and interpolate linearly inside it. Memory stays bounded (one
counter per bucket per route) and the JSON agrees with what a Prometheus
server would compute from the scrape; the price is precision, which is that
of the bucket bounds in `botserver.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import monotonic, perf_counter
from typing import Any

import httpx
from prometheus_client import generate_latest

from botserver import __version__
from botserver.metrics import Metrics
from botserver.services.container import Services

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0
QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class Check:
    status: str  # "ok", "degraded" or "error"
    latency_ms: float
    message: str | None = None
    details: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": self.status, "latency_ms": self.latency_ms}
        if self.message:
            answer["message"] = self.message
        if self.details:
            answer.update(self.details)
        return answer


async def _timed(probe: Callable[[], Awaitable[Check | None]]) -> Check:
    """Run one probe under a timeout; its exception or silence becomes an `error` check."""
    started = perf_counter()

    def elapsed() -> float:
        return round((perf_counter() - started) * 1000, 3)

    try:
        result = await asyncio.wait_for(probe(), timeout=CHECK_TIMEOUT)
    except TimeoutError:
        return Check("error", elapsed(), f"No answer within {CHECK_TIMEOUT:g} s.")
    except Exception as exc:
        return Check("error", elapsed(), f"Failed: {type(exc).__name__}.")
    if result is None:
        return Check("ok", elapsed())
    return Check(result.status, elapsed(), result.message, result.details)


async def system_status(services: Services) -> dict[str, Any]:
    """`status` is healthy only when every dependency check is ok."""

    async def database() -> None:
        await services.db.ping()

    async def directory() -> Check | None:
        issuer = services.settings.oidc_issuer
        if not issuer:
            return Check("ok", 0, details={"mode": "embedded"})
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT) as client:
            response = await client.get(url)
        if response.status_code != 200:
            return Check("error", 0, f"Discovery answered {response.status_code}.")
        return Check("ok", 0, details={"mode": "external"})

    async def redis() -> Check | None:
        if not await services.rate_limiter.check():
            return Check("error", 0, "Redis does not answer PING.")
        return None

    async def bots() -> Check | None:
        listed = await services.bots.list_all()
        offline = sorted(bot.name for bot in listed if bot.status != "online")
        details = {"total": len(listed), "offline": offline}
        if offline:
            return Check("degraded", 0, "Some bot packages failed to load.", details)
        return Check("ok", 0, details=details)

    probes: dict[str, Callable[[], Awaitable[Check | None]]] = {
        "database": database,
        "directory": directory,
        "bots": bots,
    }
    if services.settings.redis_url:
        probes["redis"] = redis
    results = await asyncio.gather(*(_timed(probe) for probe in probes.values()))
    checks = dict(zip(probes, results, strict=True))

    healthy = all(check.status == "ok" for check in checks.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "version": __version__,
        "uptime_seconds": round(monotonic() - services.started_monotonic, 3),
        "checks": {name: check.as_dict() for name, check in checks.items()},
    }


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile from cumulative `(upper_bound, count)` buckets, sorted, `+Inf` last."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: report that bound
            if cumulative == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    return lower


def metrics_snapshot(metrics: Metrics) -> dict[str, Any]:
    requests: list[dict[str, Any]] = []
    total = 0
    for family in metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                count = int(sample.value)
                total += count
                requests.append({**sample.labels, "status": int(sample.labels["status"])})
                requests[-1]["count"] = count

    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in metrics.latency.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                route = sample.labels["route"]
                buckets.setdefault(route, []).append((float(sample.labels["le"]), sample.value))
    latency = {}
    for route, route_buckets in sorted(buckets.items()):
        route_buckets.sort()
        summary: dict[str, Any] = {"count": int(route_buckets[-1][1])}
        for q in QUANTILES:
            value = quantile(q, route_buckets)
            summary[f"p{round(q * 100)}_ms"] = None if value is None else round(value * 1000, 3)
        latency[route] = summary

    return {
        "requests_total": total,
        "requests": sorted(requests, key=lambda r: (r["route"], r["method"], r["status"])),
        "latency": latency,
        "open_sockets": int(_value(metrics.open_sockets)),
        "messages": {
            "in": int(_value(metrics.messages, "_total", direction="in")),
            "out": int(_value(metrics.messages, "_total", direction="out")),
        },
        "rate_limited": {
            tier: int(_value(metrics.rate_limited, "_total", tier=tier))
            for tier in ("public", "authenticated", "admin")
        },
    }


def _value(collector: Any, suffix: str = "", **labels: str) -> float:
    for family in collector.collect():
        for sample in family.samples:
            if sample.name == family.name + suffix and sample.labels == labels:
                return float(sample.value)
    return 0.0


def prometheus_text(metrics: Metrics) -> bytes:
    return generate_latest(metrics.registry)
