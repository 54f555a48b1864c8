"""The interface between the interpreter and the conversation runtime."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Host(Protocol):
    """Everything a script can do to the outside world goes through here.

    The runtime implements it per conversation turn; the interpreter never
    touches files, the network or the clock by itself.
    """

    async def talk(self, content: str, suggestions: list[str]) -> None: ...

    async def wait(self, seconds: float) -> None: ...

    async def get_bot_memory(self, key: str) -> Any: ...

    async def set_bot_memory(self, key: str, value: Any) -> None: ...

    async def get_user_memory(self, key: str) -> Any: ...

    async def set_user_memory(self, key: str, value: Any) -> None: ...

    async def set_context(self, name: str, value: Any) -> None: ...

    def now(self) -> datetime: ...
