"""The contract's authentication endpoints: sign in, callback, sign out, validate."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from botserver.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
    ServicesDep,
    presented_token,
)
from botserver.clock import isoformat
from botserver.config import Settings
from botserver.errors import error_responses
from botserver.logs import client_address_var
from botserver.services.signin import STATE_LIFETIME

router = APIRouter(prefix="/auth", tags=["auth"])

# Ties a pending sign-in to the browser that started it; only /auth needs to see it.
SIGNIN_COOKIE = "botserver_signin"
SIGNIN_COOKIE_PATH = "/auth"


class Validation(BaseModel):
    valid: bool
    user_id: str
    expires_at: str


class LoggedOut(BaseModel):
    success: bool
    message: str
    end_session_url: str | None = None


class CsrfToken(BaseModel):
    csrf_token: str


def _peer_is_trusted(peer: str | None, settings: Settings) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    for entry in settings.trusted_proxies:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def came_over_https(request: Request, settings: Settings) -> bool:
    """HTTPS directly, or per X-Forwarded-Proto when the peer is a trusted proxy."""
    if request.url.scheme == "https":
        return True
    if _peer_is_trusted(request.client.host if request.client else None, settings):
        forwarded = request.headers.get("x-forwarded-proto", "")
        return forwarded.split(",")[0].strip().lower() == "https"
    return False


@router.get(
    "/login",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Redirect to the directory"}, **error_responses(400, 503)},
)
async def login(
    request: Request,
    services: ServicesDep,
    return_to: Annotated[str | None, Query(max_length=2048)] = None,
) -> RedirectResponse:
    """Start signing in: redirect to the directory (authorization code, PKCE, state, nonce)."""
    started = await services.signin.start(return_to)
    response = RedirectResponse(started.url, status_code=302, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        SIGNIN_COOKIE,
        started.browser_binding,
        max_age=int(STATE_LIFETIME.total_seconds()),
        path=SIGNIN_COOKIE_PATH,
        httponly=True,
        secure=came_over_https(request, services.settings),
        samesite="lax",
    )
    return response


@router.get(
    "/callback",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Signed in"}, **error_responses(400, 401, 503)},
)
async def callback(
    request: Request,
    services: ServicesDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> RedirectResponse:
    """Finish signing in: set the session cookie and return to where sign-in started."""
    ip = client_address_var.get()  # through trusted proxies
    signed_in = await services.signin.finish(
        code=code,
        state=state,
        error=error,
        browser_binding=request.cookies.get(SIGNIN_COOKIE),
        ip=ip,
    )

    settings = services.settings
    secure = came_over_https(request, settings)
    max_age = int(settings.login_session_hours * 3600)
    response = RedirectResponse(
        signed_in.return_to, status_code=302, headers={"Cache-Control": "no-store"}
    )
    response.delete_cookie(
        SIGNIN_COOKIE, path=SIGNIN_COOKIE_PATH, httponly=True, secure=secure, samesite="lax"
    )
    response.set_cookie(
        SESSION_COOKIE,
        signed_in.login.token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    response.set_cookie(
        CSRF_COOKIE,
        services.login_sessions.csrf_token(signed_in.login.session.id),
        max_age=max_age,
        path="/",
        httponly=False,
        secure=secure,
        samesite="lax",
    )
    return response


@router.post("/logout", response_model=LoggedOut, responses=error_responses(401, 403))
async def logout(
    request: Request, response: Response, principal: CurrentUser, services: ServicesDep
) -> LoggedOut:
    """Revoke the caller's login session and clear the cookies."""
    token = presented_token(request)
    end_session_url = await services.signin.sign_out(token) if token else None
    secure = came_over_https(request, services.settings)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=secure, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="lax")
    return LoggedOut(
        success=True, message="Logged out successfully", end_session_url=end_session_url
    )


@router.get("/validate", response_model=Validation, responses=error_responses(401))
async def validate(principal: CurrentUser) -> Validation:
    """Describe the caller's login session; 401 when it is invalid or expired."""
    return Validation(
        valid=True, user_id=principal.user_id, expires_at=isoformat(principal.expires_at)
    )


@router.get("/csrf", response_model=CsrfToken, responses=error_responses(401))
async def csrf(principal: CurrentUser, services: ServicesDep) -> CsrfToken:
    """The CSRF token a signed-in page echoes in X-CSRF-Token (the botserver_csrf cookie)."""
    return CsrfToken(csrf_token=services.login_sessions.csrf_token(principal.login_session_id))
