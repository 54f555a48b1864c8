"""The bus between the conversation pipeline and the sockets.

The pipeline publishes every stored message (and typing, session-ended
events) on the channel of its session; each socket subscribes to the
channels of the sessions it shows, and to the channel of the login session
that signed it in, which hears when that login is revoked. The in-process bus serves one instance;
a Redis bus carries the same events between instances, so the pipeline
never knows which instance holds a user's socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Event = dict[str, Any]
Handler = Callable[[Event], None]


def session_channel(session_id: str) -> str:
    return f"session:{session_id}"


def login_channel(login_session_id: str) -> str:
    return f"login:{login_session_id}"


class Subscription(Protocol):
    def close(self) -> None: ...


class Bus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, event: Event) -> None:
        """Deliver `event` to every handler subscribed to `channel`, on any instance."""

    def subscribe(self, channel: str, handler: Handler) -> Subscription:
        """Call `handler` (synchronously, without blocking) for each event on `channel`."""
