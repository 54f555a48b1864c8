"""A client for any OpenAI-compatible chat-completions endpoint, set up per bot.

A bot reaches a language model through rows of its ``config.csv``:

    llm-url       base URL, e.g. ``http://127.0.0.1:11434/v1`` (required for LLM)
    llm-model     model name (required with llm-url)
    llm-key       bearer key (optional)
    llm-key-env   name of an environment variable holding the key instead
    llm-system    system prompt sent before every prompt (optional)
    llm-timeout   seconds, default 30

One call sends ``POST {llm-url}/chat/completions`` with the model, the
messages and ``stream``. A streamed answer is read as server-sent events,
``data: {...}`` lines whose ``choices[0].delta.content`` carry the text,
until ``data: [DONE]``.

Bounds: an answer stops at ``max_chars`` characters (16 KiB by default);
each wait for the endpoint and the whole answer must each finish within the
timeout; a body or event line over 1 MiB is refused. Every failure is an
:class:`LlmError` whose message is safe to show to bot authors and to log:
it names the endpoint by scheme, host and port only and never contains the
key or credentials from the URL, even when the endpoint echoes them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 600.0
MAX_ANSWER_CHARS = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024
_DETAIL_CHARS = 200


class LlmError(Exception):
    """The model could not be used; the message is safe to show and log."""


@dataclass(frozen=True)
class LlmSettings:
    """One bot's endpoint. ``url`` never holds credentials; they move to ``auth``."""

    url: str
    model: str
    key: str | None = field(default=None, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    system: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_chars: int = MAX_ANSWER_CHARS

    @classmethod
    def from_config(
        cls, config: Mapping[str, str], environ: Mapping[str, str] | None = None
    ) -> LlmSettings:
        """Read the ``llm-*`` rows of a bot's config; raise :class:`LlmError` if unusable."""
        rows = {key.strip().lower(): value.strip() for key, value in config.items()}
        raw_url = rows.get("llm-url", "")
        if not raw_url:
            raise LlmError("This bot has no llm-url configured")
        # The URL may carry credentials, so no message below repeats it.
        try:
            url = httpx.URL(raw_url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise LlmError("config.csv: llm-url is not a valid URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise LlmError("config.csv: llm-url must be an http:// or https:// URL")
        auth = (url.username, url.password) if url.userinfo else None
        base = url.copy_with(username=None, password=None, fragment=None)

        model = rows.get("llm-model", "")
        if not model:
            raise LlmError("This bot has an llm-url but no llm-model configured")

        key = rows.get("llm-key") or None
        variable = rows.get("llm-key-env", "")
        if key is None and variable:
            key = (os.environ if environ is None else environ).get(variable) or None
            if key is None:
                raise LlmError(f"The environment variable {variable} (llm-key-env) is not set")

        timeout = DEFAULT_TIMEOUT
        if rows.get("llm-timeout"):
            try:
                timeout = float(rows["llm-timeout"])
            except ValueError:
                timeout = -1.0
            if not 0 < timeout <= MAX_TIMEOUT:
                raise LlmError(
                    f"config.csv: llm-timeout must be a number of seconds from 0 to {MAX_TIMEOUT:g}"
                )
        return cls(
            url=str(base),
            model=model,
            key=key,
            auth=auth,
            system=rows.get("llm-system") or None,
            timeout=timeout,
        )

    @property
    def endpoint(self) -> str:
        """Where to POST: the base URL's path plus ``/chat/completions``, query kept."""
        url = httpx.URL(self.url)
        return str(url.copy_with(path=url.path.rstrip("/") + "/chat/completions"))

    @property
    def where(self) -> str:
        """The endpoint as messages name it: scheme, host and port only."""
        url = httpx.URL(self.url)
        port = f":{url.port}" if url.port else ""
        return f"{url.scheme}://{url.host}{port}"


class LlmClient:
    """Asks one endpoint; pass ``http`` to share a connection pool between calls."""

    def __init__(self, settings: LlmSettings, *, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.http = http

    async def complete(self, prompt: str) -> str:
        """The whole answer, asked for without streaming."""
        settings = self.settings
        try:
            async with asyncio.timeout(settings.timeout), self._post(prompt, False) as response:
                await self._check(response)
                body = bytearray()
                async for piece in response.aiter_bytes():
                    body += piece
                    if len(body) > MAX_BODY_BYTES:
                        raise self._error(f"sent an answer larger than {MAX_BODY_BYTES} bytes")
        except TimeoutError:
            raise self._timed_out() from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        answer = self._message_text(bytes(body))
        return self._bounded(answer)

    async def stream(self, prompt: str) -> AsyncGenerator[str, None]:
        """The answer piece by piece as the endpoint generates it."""
        settings = self.settings
        deadline = time.monotonic() + settings.timeout
        produced = 0
        try:
            async with self._post(prompt, True) as response:
                await self._check(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    # The endpoint ignored "stream": take its whole answer at once.
                    body = await response.aread()
                    yield self._bounded(self._message_text(body))
                    return
                async for data in self._events(response, deadline):
                    if data == "[DONE]":
                        return
                    piece = self._delta_text(data)
                    if not piece:
                        continue
                    room = settings.max_chars - produced
                    if len(piece) >= room:
                        yield piece[:room]
                        self._log_cut()
                        return
                    produced += len(piece)
                    yield piece
        except httpx.TimeoutException:
            raise self._timed_out() from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        raise self._error("ended the answer without [DONE]")

    # -- the request --------------------------------------------------------

    @asynccontextmanager
    async def _post(self, prompt: str, stream: bool) -> AsyncIterator[httpx.Response]:
        settings = self.settings
        messages: list[dict[str, str]] = []
        if settings.system:
            messages.append({"role": "system", "content": settings.system})
        messages.append({"role": "user", "content": prompt})
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if settings.key:
            headers["Authorization"] = f"Bearer {settings.key}"
        auth = httpx.BasicAuth(*settings.auth) if settings.auth and not settings.key else None
        async with AsyncExitStack() as stack:
            http = self.http
            if http is None:
                http = await stack.enter_async_context(httpx.AsyncClient())
            response = await stack.enter_async_context(
                http.stream(
                    "POST",
                    settings.endpoint,
                    json={"model": settings.model, "messages": messages, "stream": stream},
                    headers=headers,
                    auth=auth,
                    timeout=httpx.Timeout(settings.timeout),
                )
            )
            yield response

    async def _check(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        body = bytearray()
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > 4096:
                break
        detail = _error_detail(bytes(body))
        status = f"{response.status_code} {response.reason_phrase}".strip()
        raise self._error(f"answered {status}" + (f": {self._redact(detail)}" if detail else ""))

    async def _events(self, response: httpx.Response, deadline: float) -> AsyncIterator[str]:
        """The data of each server-sent event, as its lines arrive."""
        pending = ""
        data: list[str] = []
        async for text in response.aiter_text():
            if time.monotonic() > deadline:
                raise self._timed_out()
            pending += text
            if len(pending) > MAX_BODY_BYTES:
                raise self._error(f"sent an event line longer than {MAX_BODY_BYTES} characters")
            *lines, pending = pending.split("\n")
            for line in lines:
                line = line.rstrip("\r")
                if not line:  # a blank line ends an event
                    if data:
                        yield "\n".join(data)
                        data = []
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
        if pending.startswith("data:"):
            data.append(pending[5:].removeprefix(" "))
        if data:  # lenient about a missing blank line at the very end
            yield "\n".join(data)

    # -- reading answers ----------------------------------------------------

    def _message_text(self, body: bytes) -> str:
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise self._error("answered with something that is not a chat completion") from None
        if content is None:
            return ""
        if not isinstance(content, str):
            raise self._error("answered with something that is not a chat completion")
        return content

    def _delta_text(self, data: str) -> str:
        try:
            event = json.loads(data)
        except ValueError:
            raise self._error("sent an event that is not JSON") from None
        if isinstance(event, dict) and event.get("error"):
            raise self._error(f"failed while answering: {self._redact(_describe(event['error']))}")
        try:
            choices = event["choices"]
            if not choices:  # e.g. a final usage-only event
                return ""
            content = choices[0].get("delta", {}).get("content")
        except (KeyError, TypeError, AttributeError):
            raise self._error("sent an event that is not a chat completion chunk") from None
        return content if isinstance(content, str) else ""

    def _bounded(self, answer: str) -> str:
        if len(answer) > self.settings.max_chars:
            self._log_cut()
            return answer[: self.settings.max_chars]
        return answer

    def _log_cut(self) -> None:
        logger.info(
            "An answer from the LLM endpoint at %s was cut at %d characters.",
            self.settings.where,
            self.settings.max_chars,
        )

    # -- errors -------------------------------------------------------------

    def _error(self, what: str) -> LlmError:
        return LlmError(f"The LLM endpoint at {self.settings.where} {what}")

    def _timed_out(self) -> LlmError:
        return self._error(f"did not answer within {self.settings.timeout:g} seconds")

    def _transport_error(self, exc: httpx.HTTPError) -> LlmError:
        # httpx messages can quote the request; name the kind of failure only.
        if isinstance(exc, httpx.TimeoutException):
            return self._timed_out()
        if isinstance(exc, httpx.ConnectError):
            return self._error("could not be reached")
        return self._error(f"broke off the answer ({type(exc).__name__})")

    def _redact(self, text: str) -> str:
        secrets = [self.settings.key, *(self.settings.auth or ())]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text[:_DETAIL_CHARS]


def _describe(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "")
    return str(error)


def _error_detail(body: bytes) -> str:
    """The endpoint's own explanation of an error answer, if it gave one."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(payload, dict) and "error" in payload:
        return _describe(payload["error"])
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])
    return ""
