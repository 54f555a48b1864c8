"""The Redis bus between two instances, against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis_lib

from botserver.bus import Event
from botserver.bus.redis import PREFIX, RedisBus
from tests.support.services import RedisServer


@pytest.fixture
async def buses(redis_server: RedisServer) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    first, second = RedisBus(redis_server.url), RedisBus(redis_server.url)
    await first.start()
    await second.start()
    yield first, second
    await first.close()
    await second.close()


async def numsub(url: str, channel: str) -> int:
    async with redis_lib.from_url(url) as client:
        counts: list[Any] = await client.pubsub_numsub(PREFIX + channel)
    return int(counts[0][1])


async def settle(condition: Any, timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


async def test_events_reach_the_other_instance_in_order(buses: tuple[RedisBus, RedisBus]) -> None:
    first, second = buses
    seen_on_first: list[int] = []
    seen_on_second: list[int] = []
    await first.subscribe("session:s", lambda e: seen_on_first.append(e["n"])).ready()
    await second.subscribe("session:s", lambda e: seen_on_second.append(e["n"])).ready()

    for n in range(200):
        await second.publish("session:s", {"n": n})

    async def all_arrived() -> bool:
        return len(seen_on_first) == 200 and len(seen_on_second) == 200

    await settle(all_arrived)
    assert seen_on_first == list(range(200))  # once each, in order
    assert seen_on_second == list(range(200))


async def test_subscriptions_are_counted_per_channel(
    buses: tuple[RedisBus, RedisBus], redis_server: RedisServer
) -> None:
    first, _ = buses
    one = first.subscribe("session:c", lambda e: None)
    two = first.subscribe("session:c", lambda e: None)
    await one.ready()
    assert await numsub(redis_server.url, "session:c") == 1  # one Redis subscription

    one.close()
    await asyncio.sleep(0.1)
    assert await numsub(redis_server.url, "session:c") == 1  # still somebody listening

    two.close()

    async def gone() -> bool:
        return await numsub(redis_server.url, "session:c") == 0

    await settle(gone)


async def test_one_pubsub_connection_per_instance(
    buses: tuple[RedisBus, RedisBus], redis_server: RedisServer
) -> None:
    first, second = buses
    for n in range(5):
        await first.subscribe(f"session:{n}", lambda e: None).ready()
        await second.subscribe(f"session:{n}", lambda e: None).ready()
    async with redis_lib.from_url(redis_server.url) as client:
        clients = await client.client_list(_type="pubsub")
    for bus in buses:
        assert [c["name"] for c in clients].count(f"botserver-events-{bus.instance_id}") == 1


async def test_a_failing_handler_does_not_stop_the_others(
    buses: tuple[RedisBus, RedisBus],
) -> None:
    first, second = buses
    received: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    await first.subscribe("session:f", broken).ready()
    await first.subscribe("session:f", received.append).ready()
    await second.publish("session:f", {"n": 1})
    await second.publish("session:f", {"n": 2})

    async def both() -> bool:
        return len(received) == 2

    await settle(both)
