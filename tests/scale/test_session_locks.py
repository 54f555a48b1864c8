"""PostgreSQL advisory session locks, as two instances would hold them."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from botserver.errors import ApiError, ErrorCode
from botserver.services.locks import AdvisorySessionLocks
from tests.support.services import PostgresServer


@pytest.fixture
async def two_instances(
    postgres: PostgresServer,
) -> AsyncIterator[tuple[AdvisorySessionLocks, ...]]:
    url = postgres.create_database(f"locks_{secrets.token_hex(4)}")
    first, second = AdvisorySessionLocks(url), AdvisorySessionLocks(url)
    yield first, second
    await first.close()
    await second.close()


async def test_one_session_is_held_by_one_instance_at_a_time(
    two_instances: tuple[AdvisorySessionLocks, ...],
) -> None:
    first, second = two_instances
    log: list[str] = []

    async def turn(locks: AdvisorySessionLocks, name: str) -> None:
        async with locks.hold("session-1"):
            log.append(f"{name} in")
            await asyncio.sleep(0.05)
            log.append(f"{name} out")

    await asyncio.gather(
        *(
            turn(locks, f"{label}{n}")
            for n in range(3)
            for label, locks in (("a", first), ("b", second))
        )
    )
    # Never two inside at once: every "in" is followed by the same turn's "out".
    assert len(log) == 12
    for entered, left in zip(log[::2], log[1::2], strict=True):
        assert entered.endswith(" in") and left == entered.replace(" in", " out")


async def test_other_sessions_do_not_wait(two_instances: tuple[AdvisorySessionLocks, ...]) -> None:
    first, second = two_instances
    async with first.hold("session-1"):
        await asyncio.wait_for(_enter(second, "session-2"), timeout=2)


async def test_a_dead_holder_releases_the_lock(
    two_instances: tuple[AdvisorySessionLocks, ...],
) -> None:
    first, second = two_instances
    held = asyncio.Event()

    async def hold_forever() -> None:
        async with first.hold("session-1"):
            held.set()
            await asyncio.sleep(3600)

    holder = asyncio.create_task(hold_forever())
    await held.wait()
    waiter = asyncio.create_task(_enter(second, "session-1"))
    await asyncio.sleep(0.2)
    assert not waiter.done()

    # The holder's connection dies, as when its process is killed.
    admin = await asyncpg.connect(first.url.replace("+asyncpg", ""))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())"
        )
    finally:
        await admin.close()
    await asyncio.wait_for(waiter, timeout=5)
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder


async def _enter(locks: AdvisorySessionLocks, session_id: str) -> None:
    async with locks.hold(session_id):
        return


async def test_a_wait_past_the_limit_is_a_503(postgres: PostgresServer) -> None:
    url = postgres.create_database(f"locks_{secrets.token_hex(4)}")
    first, second = AdvisorySessionLocks(url), AdvisorySessionLocks(url, wait_seconds=0.3)
    try:
        async with first.hold("session-1"):
            with pytest.raises(ApiError) as refused:
                await _enter(second, "session-1")
        assert refused.value.status == 503
        assert refused.value.code == ErrorCode.SERVICE_UNAVAILABLE
        await asyncio.wait_for(_enter(second, "session-1"), timeout=2)  # and it recovers
    finally:
        await first.close()
        await second.close()
