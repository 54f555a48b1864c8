"""PostgreSQL transaction-level advisory locks, each on a connection of its own.

`services/locks.py` explains why session ordering rests on these; this
module only knows how to take and release one.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)

from botserver.storage.db import DatabaseUnavailable

LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE when `lock_timeout` expires


class LockTimeout(Exception):
    """Another holder kept the lock longer than the caller was willing to wait."""


class HeldLock:
    """An advisory lock held by the open transaction of its own connection."""

    def __init__(self, connection: AsyncConnection, transaction: AsyncTransaction) -> None:
        self._connection = connection
        self._transaction = transaction

    async def release(self) -> None:
        # Rolling back releases the lock; a dead connection has released it already.
        with contextlib.suppress(Exception):
            await self._transaction.rollback()
        with contextlib.suppress(Exception):
            await self._connection.close()


class AdvisoryLocks:
    """A small engine whose connections do nothing but hold advisory locks.

    Waiters sit on these connections, not on the main pool, so a busy session
    cannot starve ordinary queries of connections.
    """

    def __init__(self, url: str, *, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=5,
            max_overflow=45,
            pool_timeout=wait_seconds,
            pool_pre_ping=True,
            connect_args={"timeout": 5, "command_timeout": wait_seconds + 5},
        )

    async def acquire(self, key: int) -> HeldLock:
        """Take `pg_advisory_xact_lock(key)`; the caller must `release()` it.

        Raises `LockTimeout` after `wait_seconds` of waiting and
        `DatabaseUnavailable` when PostgreSQL does not answer.
        """
        try:
            connection = await self.engine.connect()
        except (OSError, TimeoutError, DBAPIError) as exc:
            raise DatabaseUnavailable("The database is not answering.") from exc
        try:
            transaction = await connection.begin()
            await connection.execute(
                text(f"SET LOCAL lock_timeout = '{int(self.wait_seconds * 1000)}ms'")
            )
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await connection.close()
            if (
                isinstance(exc, DBAPIError)
                and getattr(exc.orig, "pgcode", None) == LOCK_NOT_AVAILABLE
            ):
                raise LockTimeout(f"Advisory lock {key} is still held elsewhere.") from exc
            if isinstance(exc, OSError | TimeoutError | DBAPIError):
                raise DatabaseUnavailable("The database is not answering.") from exc
            raise
        return HeldLock(connection, transaction)

    async def close(self) -> None:
        await self.engine.dispose()
