"""The database handle: engine, transactions and migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from botserver.storage.unit import UnitOfWork

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(Exception):
    """The database did not answer; requests fail fast with 503 until it returns."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.update(
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=5,
                connect_args={"timeout": 5, "command_timeout": 15},
            )
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer at a time and makes the others sleep and
        # retry, which turns contention into long stalls. Within one process,
        # queueing transactions on a lock is both fairer and much faster.
        self._serial = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        if self._serial is None:
            async with self._unit() as uow:
                yield uow
        else:
            async with self._serial, self._unit() as uow:
                yield uow

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[UnitOfWork]:
        try:
            session: AsyncSession = self._sessions()
        except (OSError, DBAPIError) as exc:  # pragma: no cover - engine-level failure
            raise DatabaseUnavailable(str(exc)) from exc
        try:
            async with session.begin():
                yield UnitOfWork(session)
        except (TimeoutError, OSError, OperationalError, DBAPIError) as exc:
            if _is_connection_error(exc):
                raise DatabaseUnavailable("The database is not answering.") from exc
            raise
        finally:
            await session.close()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError | asyncio.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        name = type(exc.orig).__name__ if exc.orig is not None else ""
        return any(
            word in name
            for word in ("Connection", "CannotConnectNow", "AdminShutdown", "Timeout", "OSError")
        ) or isinstance(exc.orig, OSError)
    return False


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
