"""Per-session locks: one message of a session is processed at a time.

The in-process lock orders work within one instance (SQLite, one process).
Locks are created on demand and dropped when nobody holds or waits for them,
so a long-running server does not accumulate one per session ever seen. On
PostgreSQL the advisory locks below order work across every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)

from botserver.errors import ApiError
from botserver.storage.db import DatabaseUnavailable

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE when `lock_timeout` expires


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
    a connection of a small engine of its own, held open while the turn runs
    on ordinary connections, then rolled back. `key` is the first 64 bits of
    SHA-256 of the session id; a collision only makes two sessions wait for
    each other. An in-process lock is taken first, so one instance puts at
    most one waiter per session into PostgreSQL and never fills its pool
    with waiters.

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
        self.local = LocalSessionLocks()
        self.wait_seconds = wait_seconds
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=5,
            max_overflow=45,
            pool_timeout=wait_seconds,
            pool_pre_ping=True,
            connect_args={"timeout": 5, "command_timeout": wait_seconds + 5},
        )

    @asynccontextmanager
    async def _hold(self, session_id: str) -> AsyncIterator[None]:
        async with self.local.hold(session_id):
            connection, transaction = await self._acquire(session_id)
            try:
                yield
            finally:
                # Rolling back releases the lock; a dead connection has released it already.
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _acquire(self, session_id: str) -> tuple[AsyncConnection, AsyncTransaction]:
        try:
            connection = await self.engine.connect()
        except (OSError, TimeoutError, DBAPIError) as exc:
            raise DatabaseUnavailable("The database is not answering.") from exc
        try:
            transaction = await connection.begin()
            await connection.execute(
                text(f"SET LOCAL lock_timeout = '{int(self.wait_seconds * 1000)}ms'")
            )
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(session_id)}
            )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await connection.close()
            if (
                isinstance(exc, DBAPIError)
                and getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE
            ):
                raise ApiError.unavailable(
                    "This session is busy with another message; try again."
                ) from exc
            if isinstance(exc, OSError | TimeoutError | DBAPIError):
                raise DatabaseUnavailable("The database is not answering.") from exc
            raise
        return connection, transaction

    def hold(self, session_id: str) -> AbstractAsyncLock:
        return self._hold(session_id)  # type: ignore[return-value]

    async def close(self) -> None:
        await self.engine.dispose()


def lock_key(session_id: str) -> int:
    """A signed 64-bit advisory-lock key for a session."""
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big", signed=True)
