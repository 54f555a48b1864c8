"""The in-process bus: one instance, handlers called in publish order."""

from __future__ import annotations

import logging
from collections import defaultdict

from botserver.bus import Event, Handler

logger = logging.getLogger(__name__)


class _MemorySubscription:
    def __init__(self, bus: MemoryBus, channel: str, handler: Handler) -> None:
        self._bus = bus
        self._channel = channel
        self._handler = handler

    def close(self) -> None:
        self._bus._remove(self._channel, self._handler)


class MemoryBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    async def publish(self, channel: str, event: Event) -> None:
        self.deliver(channel, event)

    def deliver(self, channel: str, event: Event) -> None:
        for handler in list(self._handlers.get(channel, ())):
            try:
                handler(event)
            except Exception:
                logger.exception("A bus handler for %s failed.", channel)

    def subscribe(self, channel: str, handler: Handler) -> _MemorySubscription:
        self._handlers[channel].append(handler)
        return _MemorySubscription(self, channel, handler)

    def _remove(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers and handler in handlers:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[channel]
