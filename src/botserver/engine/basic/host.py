"""The interface between the interpreter and the conversation runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol


class Host(Protocol):
    """Everything a script can do to the outside world goes through here.

    The runtime implements it per conversation turn; the interpreter never
    touches files, the network or the clock by itself.

    The language model is reached through three calls. ``x = LLM(p)`` awaits
    ``llm(p)`` for the whole answer. ``TALK LLM(p)`` is compiled apart: the VM
    passes ``llm_stream(p)`` to ``talk_stream``, which says the pieces to the
    user as they arrive and ends them as one ordinary message carrying the
    pending suggestions, like TALK. Keeping the source and the sink apart
    lets any other streamed text reuse ``talk_stream`` later. Hosts report a
    failed or unconfigured model by raising :class:`~.errors.HostProblem`
    (from ``llm``, or while the ``llm_stream`` iterator is consumed); the VM
    turns it into a :class:`~.errors.BasicRuntimeError` with file and line.
    """

    async def talk(self, content: str, suggestions: list[str]) -> None: ...

    async def wait(self, seconds: float) -> None: ...

    async def get_bot_memory(self, key: str) -> Any: ...

    async def set_bot_memory(self, key: str, value: Any) -> None: ...

    async def get_user_memory(self, key: str) -> Any: ...

    async def set_user_memory(self, key: str, value: Any) -> None: ...

    async def set_context(self, name: str, value: Any) -> None: ...

    def now(self) -> datetime: ...

    async def llm(self, prompt: str) -> str:
        """The model's whole answer to ``prompt``."""
        ...

    def llm_stream(self, prompt: str) -> AsyncIterator[str]:
        """The model's answer to ``prompt``, piece by piece as it is generated."""
        ...

    async def talk_stream(self, chunks: AsyncIterator[str], suggestions: list[str]) -> str:
        """Say ``chunks`` to the user as they arrive; store and return the whole text.

        If ``chunks`` fails midway, what arrived so far is still said and stored
        as a complete message before the error propagates.
        """
        ...
