"""A small WebSocket test client over the real `websockets` library."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class Socket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def open(
        cls, url: str, token: str | None = None, headers: dict[str, str] | None = None
    ) -> Socket:
        extra = dict(headers or {})
        if token:
            extra["Authorization"] = f"Bearer {token}"
        return cls(await connect(f"{url}/ws", additional_headers=extra, max_size=None))

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(
        self, timeout: float = 5.0, skip: tuple[str, ...] = ("typing",)
    ) -> dict[str, Any]:
        """The next frame, passing over the kinds in `skip` (bot typing hints by default)."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
            if frame.get("type") not in skip:
                return frame

    async def recv_until(
        self, predicate: Any, timeout: float = 10.0, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first one matching `predicate`."""
        frames = []
        for _ in range(limit):
            frame = await self.recv(timeout)
            frames.append(frame)
            if predicate(frame):
                return frames
        raise AssertionError(f"no matching frame in {frames}")

    async def expect_silence(self, seconds: float = 0.3) -> None:
        try:
            frame = await self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> Socket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def bot_messages(frames: list[dict[str, Any]]) -> list[str]:
    return [f["content"] for f in frames if f["type"] == "message" and f.get("sender") == "bot"]
