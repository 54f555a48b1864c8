"""ASGI middleware that must see every request: request ids, last-resort errors, body size."""

from __future__ import annotations

import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from botserver.api.fields import NUL, nul_field
from botserver.errors import ErrorCode, envelope
from botserver.logs import client_address_var, request_id_var
from botserver.proxies import Network, client_address

logger = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


async def _send_envelope(
    send: Send,
    status: int,
    code: ErrorCode,
    message: str,
    headers: list[tuple[bytes, bytes]],
    details: dict[str, Any] | None = None,
) -> None:
    body = json.dumps(envelope(code, message, details)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _state_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """Headers inner middleware asked every answer to carry (e.g. the rate-limit ones)."""
    extra = scope.get("state", {}).get("response_headers", {})
    return [(name.lower().encode(), value.encode()) for name, value in extra.items()]


class RequestContextMiddleware:
    """Gives each request an id, echoes it in `X-Request-Id`, and turns a crash into a 500.

    A client may pass its own `X-Request-Id` (handy behind a proxy that sets
    one); anything that is not a short token is replaced. The outermost place
    that can still answer is here, so an uncaught exception is logged with
    the id and answered with the envelope, never a traceback. It also notes
    the client's address (believing `X-Forwarded-For` only from
    `trusted_proxies`) for the audit log.
    """

    def __init__(self, app: ASGIApp, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _SAFE_REQUEST_ID.match(supplied) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        address_token = client_address_var.set(client_address(scope, self.trusted_proxies))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "Unhandled error in %s %s (request %s).",
                scope.get("method", "WS"),
                scope["path"],
                request_id,
                extra={"request_id": request_id},
            )
            if scope["type"] == "http" and not started:
                await _send_envelope(
                    send,
                    500,
                    ErrorCode.SERVER_ERROR,
                    f"Internal server error. Quote request id {request_id} when reporting it.",
                    [(b"x-request-id", request_id.encode()), *_state_headers(scope)],
                )
        finally:
            request_id_var.reset(token)
            client_address_var.reset(address_token)


class BodySizeLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        too_large = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Frameworks turn a failed body read into their own 400; once the
            # body overflowed, whatever the app says is replaced by the 413.
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not refused:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await _send_envelope(
            send,
            413,
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"The request body is larger than {self.max_bytes} bytes.",
            [],
        )


class _BodyTooLarge(Exception):
    pass


class NulRefusalMiddleware:
    """Refuses a NUL character in the path or the query string with 422, for every route.

    Path and query values reach database lookups (ids, sign-in state, the
    embedded directory's parameters), and PostgreSQL refuses NUL in text.
    Request bodies are checked by their models (see `botserver.api.fields`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = _nul_fields_in_url(scope)
        if not fields:
            await self.app(scope, receive, send)
            return
        await _send_envelope(
            send,
            422,
            ErrorCode.VALIDATION_ERROR,
            "The request is not valid.",
            _state_headers(scope),
            {"fields": [nul_field(field) for field in fields]},
        )


def _nul_fields_in_url(scope: Scope) -> list[str]:
    fields = ["path"] if NUL in scope["path"] else []
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or NUL in query:
        for name, value in parse_qsl(query, keep_blank_values=True, encoding="utf-8"):
            if NUL in name or NUL in value:
                # The name itself may hold the NUL; show it without.
                fields.append(f"query.{name.replace(NUL, '')}")
    return fields
