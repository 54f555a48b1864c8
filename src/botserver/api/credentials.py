"""Finding and resolving a request's credentials, once per request.

The rate limiter (a middleware) and the route dependencies both need the
caller; the resolved principal is remembered in the ASGI scope's ``state`` so
the database is asked once, whichever of the two asks first.
"""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import Scope

from botserver.services.container import Services
from botserver.services.principal import Principal

_STATE_KEY = "resolved_credentials"


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def cookie(scope: Scope, cookie_name: str) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(cookie_name)
            if found:
                return found
    return None


async def authenticate_once(
    scope: Scope, services: Services, token: str, *, via: str = "bearer"
) -> Principal | None:
    """`LoginSessionService.authenticate`, remembered for the rest of this request."""
    cache: dict[tuple[str, str], Principal | None] = scope.setdefault("state", {}).setdefault(
        _STATE_KEY, {}
    )
    key = (via, token)
    if key not in cache:
        cache[key] = await services.login_sessions.authenticate(token, via=via)
    return cache[key]
