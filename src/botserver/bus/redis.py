"""The Redis bus: the same events as the in-process bus, carried between instances.

Design notes:

- One pub/sub connection per instance. Sockets subscribe to channels locally;
  the bus keeps a reference count per channel (its list of handlers) and
  subscribes in Redis only to channels somebody on this instance listens to.
  One task reads that connection and calls handlers in the order Redis
  delivered the events, on the event loop; a helper task on the same
  connection brings the Redis subscriptions in line with the local ones
  whenever they change. `Subscription.ready()` waits until Redis confirmed
  a channel, so a socket that starts following a session misses nothing
  published after that.
- Every event, also one for this instance's own sockets, travels through
  Redis while the connection is up. Redis hands events to subscribers in
  the order it received the PUBLISH commands, and a turn publishes before
  it releases the session lock, so all sockets of a session see its
  messages in `seq` order, whichever instances produced them.
- While Redis is down (the reader lost its connection, or a PUBLISH fails),
  events go straight to this instance's handlers, so a single instance keeps
  working. The message is already stored; a client on another instance
  fills the gap with `resume` (sequence numbers show it). A publish logs a
  warning instead of failing the pipeline. The reader reconnects by itself
  with a capped back-off and subscribes again to every channel in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import defaultdict
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from botserver.bus import Event, Handler

logger = logging.getLogger(__name__)

PREFIX = "botserver:"
CONTROL_CHANNEL = PREFIX + "bus"  # always subscribed, so the connection has something to read
MIN_BACKOFF = 0.1
MAX_BACKOFF = 2.0
READY_WAIT = 1.0


class _RedisSubscription:
    def __init__(self, bus: RedisBus, channel: str, handler: Handler) -> None:
        self._bus = bus
        self._channel = channel
        self._handler = handler

    def close(self) -> None:
        self._bus._remove(self._channel, self._handler)

    async def ready(self) -> None:
        """Wait (briefly) until Redis confirms the channel, so no remote event slips by."""
        await self._bus._wait_subscribed(self._channel)


class RedisBus:
    def __init__(self, url: str, *, instance_id: str | None = None) -> None:
        self.instance_id = instance_id or secrets.token_hex(8)
        self._url = url
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._confirmed: set[str] = set()  # channels Redis confirmed on the current connection
        self._waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._connected = False
        self._down = False  # the reader failed and has not reconnected yet
        self._publish_failing = False
        # One retry: after Redis restarts, the first command on a pooled connection
        # finds it dead and must go again on a fresh one.
        self._publisher = self._client(retries=1)

    def _client(self, retries: int = 0, name: str | None = None) -> Redis:
        # Otherwise no hidden retries: a failure surfaces at once and the reader decides.
        return Redis.from_url(
            self._url,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), retries),
            health_check_interval=0,
            client_name=name,
        )

    @property
    def healthy(self) -> bool:
        """True while the pub/sub connection is up and publishing works."""
        return self._connected and not self._publish_failing

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Start the connection task and give it a moment; Redis being down is not fatal."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-bus")
        for _ in range(40):
            if self._connected or self._down:
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            # redis-py may turn a cancelled read into a connection error, so the
            # loop also watches `_closing`; the timeout is a last resort.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
            self._task = None
        self._handlers.clear()
        self._wake_waiters(all_channels=True)
        with contextlib.suppress(Exception):
            await self._publisher.aclose()

    # -- publish and subscribe ----------------------------------------------

    async def publish(self, channel: str, event: Event) -> None:
        if self._down:
            # Known to be unreachable: do not make the pipeline wait for a timeout.
            self._deliver(channel, event)
            return
        through_redis = self._connected
        payload = json.dumps(event, separators=(",", ":"))
        try:
            await self._publisher.publish(PREFIX + channel, payload)
        except (RedisError, OSError) as exc:
            if not self._publish_failing:
                logger.warning(
                    "Could not publish on Redis (%s); other instances miss events until it "
                    "returns, and their clients catch up with resume.",
                    type(exc).__name__,
                )
            self._publish_failing = True
            through_redis = False
        else:
            if self._publish_failing:
                logger.info("Publishing on Redis works again.")
            self._publish_failing = False
        if not through_redis:
            self._deliver(channel, event)

    def subscribe(self, channel: str, handler: Handler) -> _RedisSubscription:
        handlers = self._handlers[channel]
        handlers.append(handler)
        if len(handlers) == 1:
            self._changed.set()
        return _RedisSubscription(self, channel, handler)

    def _remove(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[channel]
                self._changed.set()

    async def _wait_subscribed(self, channel: str) -> None:
        if not self._connected or channel in self._confirmed or channel not in self._handlers:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[channel].append(waiter)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, READY_WAIT)

    def _wake_waiters(self, channel: str | None = None, *, all_channels: bool = False) -> None:
        channels = list(self._waiters) if all_channels else [channel] if channel else []
        for name in channels:
            for waiter in self._waiters.pop(name, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _deliver(self, channel: str, event: Event) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(event)
            except Exception:
                logger.exception("A bus handler for %s failed.", channel)

    # -- the connection task ------------------------------------------------

    async def _run(self) -> None:
        backoff = MIN_BACKOFF
        while not self._closing:
            # Named, so `CLIENT LIST` shows which instance each subscriber is.
            client = self._client(name=f"botserver-events-{self.instance_id}")
            pubsub = client.pubsub()
            try:
                await self._serve(pubsub)
            except (RedisError, OSError) as exc:
                if self._connected:
                    logger.warning(
                        "Lost the Redis pub/sub connection (%s); events from other instances "
                        "stop until it returns. Reconnecting.",
                        type(exc).__name__,
                    )
                else:
                    logger.debug("Redis is still unavailable (%s).", type(exc).__name__)
            finally:
                was_connected = self._connected
                self._connected = False
                self._down = True
                self._confirmed.clear()
                self._wake_waiters(all_channels=True)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            if self._closing:
                return
            backoff = MIN_BACKOFF if was_connected else min(backoff * 2, MAX_BACKOFF)
            await asyncio.sleep(backoff)

    async def _serve(self, pubsub: PubSub) -> None:
        # redis-py can swallow a cancellation inside a read or a send, so both loops
        # below also stop on flags instead of trusting `Task.cancel` alone.
        serving = [True]
        # Everything in use, in one command; Redis confirms in order, so when the
        # control channel (last) is confirmed, the instance hears every channel again.
        subscribed = set(self._handlers)
        await pubsub.subscribe(*(PREFIX + name for name in sorted(subscribed)), CONTROL_CHANNEL)
        sync = asyncio.create_task(self._keep_in_sync(pubsub, subscribed, serving))
        try:
            while not self._closing:
                if sync.done():
                    sync.result()  # re-raise a failed SUBSCRIBE
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._on_message(message)
        finally:
            serving[0] = False
            self._changed.set()
            sync.cancel()
            await asyncio.wait([sync], timeout=1)

    async def _keep_in_sync(
        self, pubsub: PubSub, subscribed: set[str], serving: list[bool]
    ) -> None:
        """Subscribe and unsubscribe in Redis whenever the local channels change."""
        while serving[0] and not self._closing:
            self._changed.clear()
            wanted = set(self._handlers)
            added, gone = wanted - subscribed, subscribed - wanted
            if added:
                await pubsub.subscribe(*(PREFIX + name for name in sorted(added)))
            if gone:
                await pubsub.unsubscribe(*(PREFIX + name for name in sorted(gone)))
                self._confirmed.difference_update(gone)
            subscribed.clear()
            subscribed.update(wanted)
            await self._changed.wait()

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel"))
        if kind == "subscribe":
            if channel == CONTROL_CHANNEL:
                if not self._connected:
                    logger.info("Connected to Redis for events between instances.")
                self._connected = True
                self._down = False
                self._publish_failing = False
                return
            name = channel.removeprefix(PREFIX)
            self._confirmed.add(name)
            self._wake_waiters(name)
            return
        if kind != "message" or not channel.startswith(PREFIX):
            return
        try:
            event = json.loads(message["data"])
        except (ValueError, KeyError, TypeError):
            event = None
        if not isinstance(event, dict):
            logger.warning("Ignored a malformed event on %s.", channel)
            return
        self._deliver(channel.removeprefix(PREFIX), event)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value) if value is not None else ""
