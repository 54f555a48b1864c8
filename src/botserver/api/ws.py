"""WebSocket /ws: real-time conversations (CLARIFICATIONS §3).

Close codes:
    4401  not authenticated (no or bad credentials, or no `auth` frame within 10 s,
          or the login session expired or was revoked while connected)
    4403  the session cookie was sent from an origin that is not allowed
    4429  abuse: too many refused or malformed frames in a short time (frames past
          BOTSERVER_WS_MAX_FRAMES_PER_SECOND count as refused), or more open
          sockets for one user than BOTSERVER_WS_MAX_SOCKETS_PER_USER
    1013  try again later: the database did not answer while signing in
    1009  a frame far over the size limit (closed by the protocol layer)

Login sessions: a socket closes with 4401 as soon as the login session that
signed it in is revoked (a `login_revoked` event on the bus, from any
instance) or its `expires_at` passes (a timer), even while the client sends
nothing. The socket checks the login session in the database once more right
after subscribing, for a revocation published before it listened, and again
at each frame, which covers a revocation event lost while Redis was down.

Delivery design: every socket has one outbox drained by one writer task, so
frames leave in the order they were queued. For each session the socket
remembers the highest `seq` it has delivered and drops anything not newer,
which makes a `resume` racing with live messages neither lose nor repeat
one: live events that arrive while the history is being read are held back
and released, through the same filter, right after it.

Streamed bot text arrives as `message` frames with `delta` and
`is_complete: false` under the seq its message will have; they pass the
filter while that seq is newer than what was delivered but never advance
it. The stored message then comes as an ordinary frame with the whole
`content` and `is_complete: true`. History (and so `resume`) holds only
stored messages, never deltas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from botserver.api.deps import SESSION_COOKIE, allowed_origins
from botserver.api.fields import fields_with_nul, nul_field
from botserver.bus import Event, Handler, Subscription, login_channel, session_channel
from botserver.errors import ApiError, ErrorCode, envelope
from botserver.logs import request_id_var
from botserver.services.container import Services
from botserver.services.conversations import MAX_SEQ
from botserver.services.principal import Principal
from botserver.storage.db import DatabaseUnavailable

logger = logging.getLogger(__name__)

router = APIRouter(tags=["websocket"])

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_ABUSE = 4429
CLOSE_TRY_AGAIN = 1013
AUTH_TIMEOUT = 10.0
STRIKE_LIMIT = 30
STRIKE_WINDOW = 10.0
HISTORY_PAGE = 500


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Connection:
    def __init__(self, websocket: WebSocket, services: Services) -> None:
        self.ws = websocket
        self.services = services
        self.id = secrets.token_hex(8)
        self.principal: Principal | None = None
        self.token: str | None = None
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.subscriptions: dict[str, Subscription] = {}
        self.delivered: dict[str, int] = {}
        self.held: dict[str, list[Event]] = {}
        self.strikes: deque[float] = deque()
        self.recent_frames: deque[float] = deque()
        self.claimed = False
        self.login_revoked = asyncio.Event()
        self.login_subscription: Subscription | None = None
        self.address = websocket.client.host if websocket.client else None

    # -- authentication -----------------------------------------------------

    async def authenticate_from_headers(self) -> None:
        headers = self.ws.headers
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            await self._use_token(credentials.strip(), via="bearer")
            return
        cookie = self.ws.cookies.get(SESSION_COOKIE)
        if cookie:
            origin = (headers.get("origin") or "").lower()
            own = (
                f"{'https' if self.ws.url.scheme == 'wss' else 'http'}://{headers.get('host', '')}"
            )
            if origin not in allowed_origins(self.services) and origin != own.lower():
                raise _Closed(CLOSE_FORBIDDEN_ORIGIN, "This origin may not use the session cookie.")
            await self._use_token(cookie, via="cookie")

    async def authenticate_from_frame(self) -> None:
        try:
            text = await asyncio.wait_for(self.ws.receive_text(), AUTH_TIMEOUT)
            frame = json.loads(text)
        except TimeoutError as exc:
            raise _Closed(CLOSE_UNAUTHENTICATED, "Authentication timed out.") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise _Closed(CLOSE_UNAUTHENTICATED, "The first frame must be an auth frame.") from exc
        if not isinstance(frame, dict) or frame.get("type") != "auth":
            raise _Closed(CLOSE_UNAUTHENTICATED, "The first frame must be an auth frame.")
        token = frame.get("token")
        if not isinstance(token, str) or not token:
            raise _Closed(CLOSE_UNAUTHENTICATED, "The auth frame needs a token.")
        await self._use_token(token, via="bearer")
        await self.send({"type": "auth_ok", "user_id": self.principal_or_fail().user_id})

    async def _use_token(self, token: str, *, via: str) -> None:
        principal = await self.services.login_sessions.authenticate(token, via=via)
        if principal is None:
            raise _Closed(CLOSE_UNAUTHENTICATED, "The credentials are invalid or expired.")
        self.principal, self.token = principal, token

    async def reauthenticate(self) -> Principal:
        """Revoked or expired login sessions stop working on open sockets too."""
        assert self.token is not None
        principal = await self.services.login_sessions.authenticate(self.token)
        if principal is None:
            raise _Closed(CLOSE_UNAUTHENTICATED, "The login session has ended.")
        self.principal = principal
        return principal

    async def follow_login(self) -> None:
        """Listen for the revocation of this socket's login session, on any instance."""
        channel = login_channel(self.principal_or_fail().login_session_id)
        self.login_subscription = await self.subscribe(channel, self.on_login_event)
        # A revocation published between sign-in and the subscription reached no one.
        await self.reauthenticate()

    def on_login_event(self, event: Event) -> None:
        if event.get("type") == "login_revoked":
            self.login_revoked.set()

    async def close_when_login_ends(self, writer: asyncio.Task[None]) -> None:
        """Close with 4401 when the login session is revoked or reaches `expires_at`."""
        expires_at = self.principal_or_fail().expires_at
        remaining = (expires_at - self.services.clock.now()).total_seconds()
        try:
            await asyncio.wait_for(self.login_revoked.wait(), max(remaining, 0.0))
            reason = "The login session was revoked."
        except TimeoutError:
            reason = "The login session expired."
        logger.info("Closed socket %s: %s", self.id, reason)
        await _drain(self, writer)
        with contextlib.suppress(Exception):
            await self.ws.close(code=CLOSE_UNAUTHENTICATED, reason=reason)

    def principal_or_fail(self) -> Principal:
        if self.principal is None:  # pragma: no cover - guarded by the flow
            raise _Closed(CLOSE_UNAUTHENTICATED, "Not authenticated.")
        return self.principal

    # -- outgoing -----------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        self.outbox.put_nowait(frame)

    async def writer(self) -> None:
        while True:
            frame = await self.outbox.get()
            if frame is None:
                return
            await self.ws.send_text(json.dumps(frame, separators=(",", ":")))

    def on_event(self, event: Event) -> None:
        """Bus handler: queue a frame for this socket (never blocks)."""
        session_id = event.get("session_id", "")
        if session_id in self.held:
            self.held[session_id].append(event)
            return
        self._release(event)

    def _release(self, event: Event) -> None:
        kind = event.get("type")
        session_id = event.get("session_id", "")
        own = event.get("origin") == self.id  # this socket's message (it got an ack) or typing
        frame = {k: v for k, v in event.items() if k != "origin"}
        if kind == "message":
            seq = int(event["seq"])
            if seq <= self.delivered.get(session_id, 0):
                return
            if event.get("is_complete") is False:
                # A streamed piece: the complete message with this seq follows,
                # and only that one counts as delivered.
                self.outbox.put_nowait(frame)
                return
            self.delivered[session_id] = seq
            frame["is_complete"] = True
        if not own:
            self.outbox.put_nowait(frame)

    def error(
        self,
        code: ErrorCode | str,
        message: str,
        session_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        frame: dict[str, Any] = {"type": "error", "session_id": session_id}
        frame.update(envelope(code, message, details))
        self.outbox.put_nowait(frame)

    def strike(self) -> None:
        now = time.monotonic()
        self.strikes.append(now)
        while self.strikes and self.strikes[0] < now - STRIKE_WINDOW:
            self.strikes.popleft()
        if len(self.strikes) > STRIKE_LIMIT:
            raise _Closed(CLOSE_ABUSE, "Too many refused or malformed frames.")

    def within_frame_rate(self) -> bool:
        """Count a frame in a one-second sliding window; false past the configured cap."""
        now = time.monotonic()
        while self.recent_frames and self.recent_frames[0] <= now - 1.0:
            self.recent_frames.popleft()
        if len(self.recent_frames) >= self.services.settings.ws_max_frames_per_second:
            return False
        self.recent_frames.append(now)
        return True

    # -- subscriptions ------------------------------------------------------

    async def follow(self, session_id: str) -> None:
        """Check the caller may see the session, then listen to it."""
        if session_id in self.subscriptions:
            return
        await self.services.conversations.owned_session(self.principal_or_fail(), session_id)
        self.subscriptions[session_id] = await self.subscribe(
            session_channel(session_id), self.on_event
        )

    async def subscribe(self, channel: str, handler: Handler) -> Subscription:
        subscription = self.services.bus.subscribe(channel, handler)
        # With Redis, wait until events from other instances are sure to arrive.
        ready = getattr(subscription, "ready", None)
        if ready is not None:
            await ready()
        return subscription

    def close_subscriptions(self) -> None:
        for subscription in self.subscriptions.values():
            subscription.close()
        self.subscriptions.clear()
        if self.login_subscription is not None:
            self.login_subscription.close()
            self.login_subscription = None

    # -- incoming -----------------------------------------------------------

    async def handle(self, text: str) -> None:
        # Even valid frames are capped: a flood of pings costs as much as anything else.
        if not self.within_frame_rate():
            self.strike()
            self.error(ErrorCode.RATE_LIMITED, "Too many frames a second; slow down.")
            return
        if len(text.encode()) > self.services.settings.ws_max_frame_bytes:
            self.strike()
            self.error(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"Frames may be at most {self.services.settings.ws_max_frame_bytes} bytes.",
            )
            return
        try:
            frame = json.loads(text)
        except ValueError:
            self.strike()
            self.error(ErrorCode.BAD_REQUEST, "Frames must be JSON objects.")
            return
        if not isinstance(frame, dict):
            self.strike()
            self.error(ErrorCode.BAD_REQUEST, "Frames must be JSON objects.")
            return

        kind = frame.get("type")
        session_id = frame.get("session_id")
        refused = fields_with_nul(frame)
        if refused:
            self.strike()
            self.error(
                ErrorCode.VALIDATION_ERROR,
                "The frame is not valid.",
                None if "session_id" in refused else _str(session_id),
                {"fields": [nul_field(field) for field in refused]},
            )
            return
        if kind == "ping":
            await self.send({"type": "pong", "session_id": session_id})
            return
        if kind not in ("message", "resume", "typing"):
            self.strike()
            self.error(ErrorCode.BAD_REQUEST, f"Unknown frame type {kind!r}.", _str(session_id))
            return
        if not isinstance(session_id, str) or not session_id:
            self.strike()
            self.error(ErrorCode.VALIDATION_ERROR, "The frame needs a session_id.")
            return

        try:
            await self.reauthenticate()
            await self.check_rate()
            if kind == "message":
                await self.on_message(frame, session_id)
            elif kind == "resume":
                await self.on_resume(frame, session_id)
            else:
                await self.follow(session_id)
                await self.services.conversations.typing(
                    self.principal_or_fail(), session_id, self.id
                )
        except ApiError as exc:
            self.strike()
            self.error(exc.code, exc.message, session_id, exc.details)
        except DatabaseUnavailable:
            # Not the client's fault: no strike, the socket stays open for a retry.
            logger.warning("The database is not answering; a %s frame was refused.", kind)
            self.error(
                ErrorCode.SERVICE_UNAVAILABLE, "The database is not answering; retry.", session_id
            )
        except _Closed:
            raise
        except Exception:
            # A bug of ours: the traceback goes to the log, the client gets the request id
            # to report, and the socket stays open for the next frame.
            logger.exception("A %s frame on socket %s failed unexpectedly.", kind, self.id)
            self.error(
                ErrorCode.SERVER_ERROR,
                "The server failed to handle this frame.",
                session_id,
                {"request_id": request_id_var.get()},
            )

    async def check_rate(self) -> None:
        """Socket messages spend the same budget as the user's HTTP requests."""
        decision = await self.services.rate_limiter.hit_principal(
            self.principal_or_fail(), self.address
        )
        if not decision.allowed:
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                "Too many requests; slow down.",
                429,
                {"retry_after": decision.retry_after},
            )

    async def on_message(self, frame: dict[str, Any], session_id: str) -> None:
        content = frame.get("content")
        client_id = frame.get("client_id")
        if not isinstance(content, str) or not content.strip():
            raise ApiError(ErrorCode.VALIDATION_ERROR, "A message needs non-empty content.", 422)
        if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 128):
            raise ApiError(ErrorCode.VALIDATION_ERROR, "client_id must be a short string.", 422)
        await self.follow(session_id)

        async def acknowledge(message: dict[str, Any], duplicate: bool) -> None:
            # `delivered` moves on when the message itself comes through the bus, after
            # anything stored before it, so the ack cannot make earlier messages look old.
            seq = int(message["seq"])
            await self.send(
                {
                    "type": "ack",
                    "session_id": session_id,
                    "message_id": message["message_id"],
                    "seq": seq,
                    "client_id": message["client_id"],
                    "duplicate": duplicate,
                }
            )

        await self.services.conversations.post(
            self.principal_or_fail(),
            session_id,
            content,
            client_id=client_id,
            origin=self.id,
            on_stored=acknowledge,
        )

    async def on_resume(self, frame: dict[str, Any], session_id: str) -> None:
        after = frame.get("after_seq", 0)
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_SEQ:
            raise ApiError(
                ErrorCode.VALIDATION_ERROR,
                f"after_seq must be a whole number from 0 to {MAX_SEQ}.",
                422,
            )
        self.held[session_id] = []
        try:
            await self.follow(session_id)
            conversations = self.services.conversations
            self.delivered[session_id] = after
            cursor = after
            while True:
                page = await conversations.messages_after(session_id, cursor, HISTORY_PAGE)
                for message in page:
                    self._release({"type": "message", **message})
                if len(page) < HISTORY_PAGE:
                    break
                cursor = page[-1]["seq"]
            session = await conversations.owned_session(self.principal_or_fail(), session_id)
        finally:
            for event in self.held.pop(session_id, []):
                self._release(event)
        if not conversations.is_live(session):
            reason = "expired" if session.status in ("active", "expired") else "ended"
            await self.send({"type": "session_ended", "session_id": session_id, "reason": reason})


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    connection = Connection(websocket, services)
    await websocket.accept()
    services.metrics.open_sockets.inc()
    writer = asyncio.create_task(connection.writer())
    login_watch: asyncio.Task[None] | None = None
    try:
        await connection.authenticate_from_headers()
        if connection.principal is None:
            await connection.authenticate_from_frame()
        claim_socket(services, connection)
        # Before any frame after sign-in is read: once a client sees a pong, it is watched.
        await connection.follow_login()
        login_watch = asyncio.create_task(connection.close_when_login_ends(writer))
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                connection.strike()
                connection.error(ErrorCode.BAD_REQUEST, "Frames must be JSON text, not binary.")
                continue
            await connection.handle(text)
    except _Closed as closed:
        await _drain(connection, writer)
        with contextlib.suppress(Exception):
            await websocket.close(code=closed.code, reason=closed.reason)
    except DatabaseUnavailable:
        logger.warning("The database is not answering; closed a socket during sign-in.")
        connection.error(ErrorCode.SERVICE_UNAVAILABLE, "The database is not answering; retry.")
        await _drain(connection, writer)
        with contextlib.suppress(Exception):
            await websocket.close(code=CLOSE_TRY_AGAIN, reason="The database is not answering.")
    except WebSocketDisconnect:
        pass
    finally:
        if login_watch is not None:
            login_watch.cancel()
            await asyncio.wait([login_watch], timeout=1)
        release_socket(services, connection)
        connection.close_subscriptions()
        services.metrics.open_sockets.dec()
        if not writer.done():
            await _drain(connection, writer)
        elif not writer.cancelled():
            writer.exception()  # a send to a client that vanished: nothing to report
        with contextlib.suppress(Exception):
            if websocket.application_state is WebSocketState.CONNECTED:
                await websocket.close()


def claim_socket(services: Services, connection: Connection) -> None:
    """Count the user's open sockets on this instance; refuse past the limit."""
    user_id = connection.principal_or_fail().user_id
    counts: dict[str, int] = services.socket_counts
    if counts.get(user_id, 0) >= services.settings.ws_max_sockets_per_user:
        raise _Closed(CLOSE_ABUSE, "Too many open sockets for this user.")
    counts[user_id] = counts.get(user_id, 0) + 1
    connection.claimed = True


def release_socket(services: Services, connection: Connection) -> None:
    if not connection.claimed or connection.principal is None:
        return
    counts = services.socket_counts
    user_id = connection.principal.user_id
    counts[user_id] -= 1
    if counts[user_id] <= 0:
        del counts[user_id]


async def _drain(connection: Connection, writer: asyncio.Task[None]) -> None:
    """Let queued frames (an error explaining a close, say) go out, then stop the writer."""
    connection.outbox.put_nowait(None)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer, timeout=2)
    if not writer.done():
        writer.cancel()
