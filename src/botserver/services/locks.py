"""Per-session locks: one message of a session is processed at a time.

The in-process lock orders work within one instance (SQLite, one process).
Locks are created on demand and dropped when nobody holds or waits for them,
so a long-running server does not accumulate one per session ever seen. On
PostgreSQL the advisory locks below order work across every instance.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from botserver.errors import ApiError
from botserver.storage.locks import AdvisoryLocks, LockTimeout


class SessionLocks(Protocol):
    def hold(self, session_id: str) -> AbstractAsyncLock: ...


class AbstractAsyncLock(Protocol):
    async def __aenter__(self) -> None: ...

    async def __aexit__(self, *exc: object) -> None: ...


class LocalSessionLocks:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def _hold(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id, (asyncio.Lock(), 0))
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users <= 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)

    def hold(self, session_id: str) -> AbstractAsyncLock:
        return self._hold(session_id)  # type: ignore[return-value]


class AdvisorySessionLocks:
    """Cluster-wide session locks: PostgreSQL transaction-level advisory locks.

    Why PostgreSQL and not Redis: every turn already needs PostgreSQL (the
    messages and dialog state live there), so the lock adds no new way to
    fail, and Redis can be down without a session losing its ordering. A
    lock held by a transaction cannot outlive its holder: when an instance
    dies, its connection closes and PostgreSQL releases the lock at once, so
    there is no lease to expire or renew and no fencing token to check. (A
    machine that vanishes without closing its sockets is noticed through TCP
    keepalives; set `tcp_keepalives_idle` on the server to bound that.)

    How: the lock is `pg_advisory_xact_lock(key)` taken in a transaction on
    a connection of a small engine of its own (`storage/locks.py`), held
    open while the turn runs on ordinary connections, then rolled back.
    `key` is the first 64 bits of SHA-256 of the session id; a collision
    only makes two sessions wait for each other. An in-process lock is
    taken first, so one instance puts at most one waiter per session into
    PostgreSQL and never fills its pool with waiters.

    Order: within an instance, messages of a session are processed in the
    order they reached the lock (asyncio locks are first come, first
    served); across instances, in the order their lock requests reached
    PostgreSQL, which queues waiters fairly. Two messages sent at the same
    moment through two instances may therefore be processed in either
    order, but never interleaved: each turn stores its user message and all
    its replies before the next one starts, and `seq` has no gaps. A client
    that waits for the `ack` before sending again keeps its own order.
    """

    def __init__(self, url: str, *, wait_seconds: float = 30.0) -> None:
        self.url = url
        self.local = LocalSessionLocks()
        self.advisory = AdvisoryLocks(url, wait_seconds=wait_seconds)

    @asynccontextmanager
    async def _hold(self, session_id: str) -> AsyncIterator[None]:
        async with self.local.hold(session_id):
            try:
                held = await self.advisory.acquire(lock_key(session_id))
            except LockTimeout as exc:
                raise ApiError.unavailable(
                    "This session is busy with another message; try again."
                ) from exc
            try:
                yield
            finally:
                await held.release()

    def hold(self, session_id: str) -> AbstractAsyncLock:
        return self._hold(session_id)  # type: ignore[return-value]

    async def close(self) -> None:
        await self.advisory.close()


def lock_key(session_id: str) -> int:
    """A signed 64-bit advisory-lock key for a session."""
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big", signed=True)
