"""The chat page at `/` and its static files under `/static/`.

The page is plain HTML, CSS and an ES module from `botserver/web/`, with no
build step. It talks to the API from the same origin with the session
cookie, so its Content-Security-Policy allows nothing but this origin (and
WebSockets): no inline script, no inline style, no third-party code.

The files are not fingerprinted, so browsers keep them but revalidate on
every use (`no-cache` with ETag / Last-Modified): a deploy is picked up at
once and an unchanged file costs a 304.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# The policy rides along on assets too: it is what protects /static/index.html.
ASSET_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["web"])


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    """The chat page; public, it finds out by itself whether the visitor is signed in."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


class StaticAssets(StaticFiles):
    """StaticFiles with the page's caching and sniffing headers on every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in ASSET_HEADERS.items()),
                ]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def static_files() -> StaticAssets:
    return StaticAssets(directory=WEB_DIR)
