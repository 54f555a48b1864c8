"""Per-session locks: one message of a session is processed at a time.

The in-process lock orders work within one instance. Locks are created on
demand and dropped when nobody holds or waits for them, so a long-running
server does not accumulate one per session ever seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol


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
