"""`POST /api/batch`: several API calls in one round trip (CLARIFICATIONS §5).

Each sub-request is dispatched through the whole application as a request
of its own: a synthetic ASGI scope that carries the caller's credentials
(Authorization, cookies, CSRF token, origin) and peer address. Routing,
authorisation, rate limits, metrics and the error envelope therefore apply
exactly as they would to the same call made alone. Items run one after the
other, in order, so a later item may rely on an earlier one's effect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.types import Message, Scope

from botserver.api.deps import CurrentUser
from botserver.errors import ErrorCode, envelope, error_responses

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["batch"])

MAX_ITEMS = 20
METHODS = frozenset({"GET", "POST", "PUT", "DELETE"})
# Request headers a sub-request inherits; everything about the body is its own.
INHERITED_HEADERS = frozenset(
    {
        b"authorization",
        b"cookie",
        b"host",
        b"origin",
        b"referer",
        b"user-agent",
        b"accept-language",
        b"x-csrf-token",
        b"x-forwarded-for",
        b"x-forwarded-proto",
    }
)


class BatchItem(BaseModel):
    id: Annotated[str | int, Field(description="The caller's label, echoed in the response.")]
    method: str = Field(max_length=16)
    path: str = Field(max_length=2048)
    body: Any = None


class BatchRequest(BaseModel):
    requests: list[BatchItem] = Field(min_length=1, max_length=MAX_ITEMS)


class BatchResult(BaseModel):
    id: str | int
    status: int
    body: Any


class BatchResponse(BaseModel):
    responses: list[BatchResult]


def _refusal(item: BatchItem) -> str | None:
    """Why an item may not run, or None."""
    if item.method.upper() not in METHODS:
        return f"Method {item.method!r} is not allowed in a batch; use GET, POST, PUT or DELETE."
    path = unquote(item.path.partition("?")[0])
    if not (path.startswith("/api/") or path == "/auth/validate"):
        return "A batched path starts with /api/ or is /auth/validate."
    if path.rstrip("/") == "/api/batch" or path.startswith("/api/batch/"):
        return "A batch cannot contain another batch."
    if any(char in path for char in "\\#") or any(ord(char) < 0x20 for char in path):
        return "The path is not a valid API path."
    return None


def _sub_scope(parent: Scope, item: BatchItem, body: bytes) -> Scope:
    raw_path, _, query = item.path.partition("?")
    headers = [(name, value) for name, value in parent["headers"] if name in INHERITED_HEADERS]
    headers.append((b"accept", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    if body:
        headers.append((b"content-type", b"application/json"))
    return {
        "type": "http",
        "asgi": parent.get("asgi", {"version": "3.0"}),
        "http_version": parent.get("http_version", "1.1"),
        "method": item.method.upper(),
        "scheme": parent.get("scheme", "http"),
        "server": parent.get("server"),
        "client": parent.get("client"),
        "root_path": parent.get("root_path", ""),
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "state": {},
    }


async def _dispatch(request: Request, item: BatchItem) -> BatchResult:
    body = b"" if item.body is None else json.dumps(item.body).encode()
    scope = _sub_scope(request.scope, item, body)
    finished = asyncio.Event()
    delivered = False
    status = 500
    chunks: list[bytes] = []
    content_type = ""

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                if name.lower() == b"content-type":
                    content_type = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app(scope, receive, send)
    finally:
        finished.set()
    return BatchResult(id=item.id, status=status, body=_decode(b"".join(chunks), content_type))


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw.decode("utf-8", errors="replace")


@router.post("/batch", response_model=BatchResponse, responses=error_responses(401, 422))
async def batch(body: BatchRequest, request: Request, _: CurrentUser) -> BatchResponse:
    """Run up to 20 API calls, each authorised and rate-limited as its own request."""
    results = []
    for item in body.requests:
        reason = _refusal(item)
        if reason is not None:
            error = envelope(ErrorCode.BAD_REQUEST, reason)
            results.append(BatchResult(id=item.id, status=400, body=error))
            continue
        results.append(await _dispatch(request, item))
    return BatchResponse(responses=results)
