"""Time as a dependency, so expiry and rate windows can be tested without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The wall clock. Every module asks this object for the time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()


class FrozenClock(Clock):
    """A clock that only moves when told to; for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


def utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime read back from a database that drops the zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def isoformat(value: datetime) -> str:
    """The contract's timestamp shape: `2024-01-20T10:00:00Z`."""
    return utc(value).astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
