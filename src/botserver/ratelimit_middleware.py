"""The HTTP side of the rate limiter: count every request, stamp every answer, refuse with 429.

A WebSocket handshake is a request too: it spends one hit, the upgrade's
answer carries the headers, and a spent budget refuses the upgrade with the
same 429 (an ASGI denial response), so a flood of handshakes is bounded like
a flood of requests. The socket's messages are then counted one by one by the
WebSocket code.

Sits inside CORS (so a refusal still carries the CORS headers a browser needs
to read it) and outside the routes (so 404, 405, 413 and validation errors
are counted and stamped like any other answer). The headers are also left in
``scope["state"]["response_headers"]``, where the last-resort 500 of
`RequestContextMiddleware` picks them up.
"""

from __future__ import annotations

import json
import logging

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from botserver.api.credentials import authenticate_once, bearer_token, cookie
from botserver.api.deps import SESSION_COOKIE
from botserver.errors import ErrorCode, envelope
from botserver.proxies import client_address
from botserver.services.container import Services
from botserver.services.principal import Principal
from botserver.storage.db import DatabaseUnavailable

logger = logging.getLogger(__name__)


async def _caller(scope: Scope, services: Services) -> Principal | None:
    """The signed-in user the request will act as; None (the public tier) otherwise."""
    try:
        token = bearer_token(scope)
        if token is not None:
            return await authenticate_once(scope, services, token)
        session = cookie(scope, SESSION_COOKIE)
        if session is not None:
            return await authenticate_once(scope, services, session, via="cookie")
    except DatabaseUnavailable:
        # The route will answer 503 anyway; count the request against its address.
        return None
    return None


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        self.limiter = services.rate_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.limiter.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return

        principal = await _caller(scope, self.services)
        address = client_address(scope, self.limiter.trusted_proxies)
        decision = await self.limiter.hit_principal(principal, address)
        headers = decision.headers()
        state = scope.setdefault("state", {})
        state["rate_limit"] = decision
        state.setdefault("response_headers", {}).update(headers)

        if not decision.allowed:
            logger.info(
                "Refused %s %s: the %s rate limit is spent.",
                scope.get("method", "WEBSOCKET"),
                scope["path"],
                decision.tier,
            )
            await _refuse(scope, receive, send, decision.retry_after, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message.setdefault("headers", [])
                response_headers = MutableHeaders(scope=message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, retry_after: int, headers: dict[str, str]
) -> None:
    message = f"Too many requests. Try again in {retry_after} seconds."
    details = {"retry_after": retry_after}
    body = json.dumps(envelope(ErrorCode.RATE_LIMITED, message, details)).encode()
    prefix = "http"
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):
            # A server that cannot answer a handshake with a response closes it instead.
            await send({"type": "websocket.close", "code": 4429, "reason": "Rate limited."})
            return
        prefix = "websocket.http"
    await send(
        {
            "type": f"{prefix}.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *((name.lower().encode(), value.encode()) for name, value in headers.items()),
            ],
        }
    )
    await send({"type": f"{prefix}.response.body", "body": body})
