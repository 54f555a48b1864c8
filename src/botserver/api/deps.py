"""Dependencies shared by the routes: services, the caller, and CSRF."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from botserver.api.credentials import authenticate_once
from botserver.errors import ApiError
from botserver.services.container import Services
from botserver.services.principal import Principal

logger = logging.getLogger(__name__)

SESSION_COOKIE = "botserver_session"
CSRF_COOKIE = "botserver_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# No listing holds two billion rows; a bound keeps huge numbers away from the database.
MAX_OFFSET = 2**31 - 1

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]

_bearer = HTTPBearer(auto_error=False, description="A login-session token.")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(services: Services) -> set[str]:
    """Origins allowed to act with the session cookie: our own, plus configured ones."""
    settings = services.settings
    origins = {origin_of(settings.public_url)}
    origins.update(origin.lower() for origin in settings.cors_origins if origin != "*")
    return origins


def request_origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.lower()
    referer = request.headers.get("referer")
    return origin_of(referer) if referer else None


def _same_host_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def check_csrf(request: Request, services: Services, principal: Principal) -> None:
    """Double-submit cookie plus Origin check, for cookie-authenticated unsafe requests."""
    origin = request_origin(request)
    if origin is None or (
        origin not in allowed_origins(services) and origin != _same_host_origin(request)
    ):
        raise ApiError.forbidden("This request's origin is not allowed to use the session cookie.")
    expected = services.login_sessions.csrf_token(principal.login_session_id).encode()
    # Bytes, not str: compare_digest refuses non-ASCII text, which a client may send.
    header = request.headers.get(CSRF_HEADER, "").encode("utf-8", "surrogateescape")
    cookie = request.cookies.get(CSRF_COOKIE, "").encode("utf-8", "surrogateescape")
    if not (
        header and hmac.compare_digest(header, cookie) and hmac.compare_digest(header, expected)
    ):
        raise ApiError.forbidden(
            "A valid CSRF token is required: echo the botserver_csrf cookie in X-CSRF-Token."
        )


def presented_token(request: Request) -> str | None:
    """The login-session token this request authenticates with: bearer first, then cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def optional_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is not None:
        principal = await authenticate_once(request.scope, services, credentials.credentials)
        if principal is None:
            raise ApiError.unauthorized("The session token is invalid or has expired.")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await authenticate_once(request.scope, services, cookie, via="cookie")
        if principal is None:
            raise ApiError.unauthorized("The session cookie is invalid or has expired.")
        if request.method in UNSAFE_METHODS:
            check_csrf(request, services, principal)
        return principal
    return None


async def require_principal(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal:
    if principal is None:
        raise ApiError.unauthorized()
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.is_admin:
        raise ApiError.forbidden("This endpoint requires the admin role.")
    return principal


CurrentUser = Annotated[Principal, Depends(require_principal)]
AdminUser = Annotated[Principal, Depends(require_admin)]
