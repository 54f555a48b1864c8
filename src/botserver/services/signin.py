"""Browser sign-in: start the authorization-code flow, finish it, sign out.

Pending sign-ins live in `auth_states` keyed by the SHA-256 of `state`, so
whichever instance receives the callback can finish the flow, and each state
can be taken exactly once. Each pending sign-in also holds the hash of a
random value kept in a short-lived cookie of the browser that started it:
a callback URL carried to another browser (login CSRF) finishes nothing.
The local user is found (or created) from the ID
token: the embedded provider's `sub` is our user id; an external issuer's
user is keyed by issuer and subject, and its roles come from the configured
claim on every sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from botserver.clock import Clock, utc
from botserver.config import Settings
from botserver.directory.oidc import OidcClient, OidcError
from botserver.errors import ApiError
from botserver.services.login_sessions import IssuedLogin, LoginSessionService
from botserver.services.principal import ADMIN_ROLE
from botserver.storage.db import Database
from botserver.storage.models import AuthState, User, new_id
from botserver.storage.unit import UnitOfWork

logger = logging.getLogger(__name__)

STATE_LIFETIME = timedelta(minutes=10)
ZITADEL_ROLES_CLAIM = "urn:zitadel:iam:org:project:roles"
_UNSAFE_PATH = re.compile(r"[\x00-\x20\x7f\\]")


def safe_return_to(value: str | None) -> str:
    """A same-origin relative path, or a 400: `return_to` must never be an open redirect."""
    if value is None or value == "":
        return "/"
    parts = urlsplit(value)
    if (
        len(value) > 2048
        or not value.startswith("/")
        or value.startswith("//")
        or _UNSAFE_PATH.search(value)
        or parts.scheme
        or parts.netloc
    ):
        raise ApiError.bad_request(
            "return_to must be a path on this site, such as /chat.", field="return_to"
        )
    return value


def roles_from_claims(claims: dict[str, Any], claim: str, admin_role: str) -> list[str]:
    """The directory's role names, in its order, with `admin_role` named `admin`.

    The claim may be a list of names or Zitadel's object keyed by name. Only
    `admin_role` grants `admin`: a directory role that merely happens to be
    called "admin" is dropped. No role at all means the plain `user`.
    """
    value = claims.get(claim)
    if value is None and claim == "roles":
        value = claims.get(ZITADEL_ROLES_CLAIM)
    names: list[str] = []
    if isinstance(value, dict):
        names = [str(key) for key in value]
    elif isinstance(value, list):
        names = [str(item) for item in value]
    elif isinstance(value, str):
        names = value.split()
    roles: dict[str, None] = {}
    for name in names:
        if name == admin_role:
            roles[ADMIN_ROLE] = None
        elif name != ADMIN_ROLE and name:
            roles[name[:100]] = None
    return list(roles) or ["user"]


@dataclass(frozen=True)
class Started:
    """Where to send the browser, and the value its sign-in cookie must carry back."""

    url: str
    browser_binding: str


@dataclass(frozen=True)
class SignedIn:
    login: IssuedLogin
    return_to: str


class SignInService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        oidc: OidcClient,
        login_sessions: LoginSessionService,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.oidc = oidc
        self.login_sessions = login_sessions

    async def start(self, return_to: str | None) -> Started:
        """Remember a pending sign-in; answer the directory URL and the browser's binding."""
        target = safe_return_to(return_to)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        binding = secrets.token_urlsafe(32)
        now = self.clock.now()
        try:
            url = await self.oidc.authorization_url(state, nonce, verifier)
        except OidcError as exc:
            raise ApiError.unavailable(exc.message) from exc
        async with self.db.unit() as uow:
            await uow.directory.purge_states(now)
            await uow.directory.add_state(
                AuthState(
                    state_hash=_hash(state),
                    nonce=nonce,
                    code_verifier=verifier,
                    browser_hash=_hash(binding),
                    return_to=target,
                    created_at=now,
                    expires_at=now + STATE_LIFETIME,
                )
            )
        return Started(url=url, browser_binding=binding)

    async def finish(
        self,
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_binding: str | None,
        ip: str | None,
    ) -> SignedIn:
        """Validate the callback end to end; any failure is audited and raised as ApiError."""
        try:
            return await self._finish(code, state, error, browser_binding, ip)
        except OidcError as exc:
            await self._failed(exc.reason, ip)
            if exc.status == 503:
                raise ApiError.unavailable(exc.message) from exc
            if exc.status == 400:
                raise ApiError.bad_request(exc.message) from exc
            raise ApiError.unauthorized(exc.message) from exc

    async def _finish(
        self,
        code: str | None,
        state: str | None,
        error: str | None,
        browser_binding: str | None,
        ip: str | None,
    ) -> SignedIn:
        if not state:
            raise OidcError("The callback carries no state.", "missing_state", 400)
        now = self.clock.now()
        async with self.db.unit() as uow:
            pending = await uow.directory.take_state(_hash(state))
        if pending is None:
            raise OidcError("Unknown or already used sign-in state.", "unknown_state", 400)
        # The state is spent either way: a callback URL that leaked is now worthless.
        if not browser_binding:
            raise OidcError(
                "This browser has no sign-in cookie for this sign-in; start again.",
                "missing_browser_binding",
                400,
            )
        if not hmac.compare_digest(_hash(browser_binding), pending.browser_hash):
            raise OidcError(
                "This sign-in was started in another browser; start again.",
                "wrong_browser",
                400,
            )
        if utc(pending.expires_at) <= now:
            raise OidcError("The sign-in took too long; start again.", "expired_state", 400)
        if error:
            raise OidcError("The directory did not sign you in.", f"directory_{error[:40]}")
        if not code:
            raise OidcError("The callback carries no authorization code.", "missing_code", 400)

        tokens = await self.oidc.exchange_code(code, pending.code_verifier)
        id_token = str(tokens["id_token"])
        claims = await self.oidc.verify_id_token(id_token, pending.nonce)
        user = await self._provision(claims)
        login = await self.login_sessions.issue(user.id, id_token=id_token)
        async with self.db.unit() as uow:
            await uow.audit.record(
                "sign_in",
                self.clock.now(),
                user_id=user.id,
                ip=ip,
                details={"issuer": self.oidc.config.issuer, "login_session_id": login.session.id},
            )
        logger.info("User %s signed in through %s.", user.username, self.oidc.config.issuer)
        return SignedIn(login=login, return_to=pending.return_to)

    async def _provision(self, claims: dict[str, Any]) -> User:
        issuer = self.oidc.config.issuer
        subject = str(claims["sub"])
        now = self.clock.now()
        async with self.db.unit() as uow:
            if self.settings.embedded_directory:
                user = await uow.users.get(subject)
                if user is None:
                    raise OidcError("The signed-in account no longer exists.", "unknown_user")
                return user

            roles = roles_from_claims(
                claims, self.settings.oidc_roles_claim, self.settings.oidc_admin_role
            )
            user = await uow.users.by_subject(issuer, subject)
            if user is None:
                user = await uow.users.add(
                    User(
                        id=new_id("user"),
                        username=await self._free_username(uow, claims, subject),
                        roles=roles,
                        failed_logins=0,
                        issuer=issuer,
                        subject=subject,
                        created_at=now,
                        updated_at=now,
                    )
                )
            user.roles = roles
            user.email = claims.get("email") or user.email
            user.first_name = claims.get("given_name") or user.first_name
            user.last_name = claims.get("family_name") or user.last_name
            user.updated_at = now
        return user

    async def _free_username(self, uow: UnitOfWork, claims: dict[str, Any], subject: str) -> str:
        wanted = str(claims.get("preferred_username") or claims.get("email") or subject)[:140]
        candidate = wanted
        while await uow.users.by_username(candidate) is not None:
            candidate = f"{wanted}-{secrets.token_hex(3)}"
        return candidate

    async def _failed(self, reason: str, ip: str | None) -> None:
        logger.info("A sign-in failed: %s.", reason)
        async with self.db.unit() as uow:
            await uow.audit.record(
                "sign_in_failed", self.clock.now(), ip=ip, details={"reason": reason}
            )

    async def sign_out(self, token: str) -> str | None:
        """Revoke a login session; answer the issuer's end-session URL when it has one."""
        id_token = await self.login_sessions.id_token_for(token)
        await self.login_sessions.revoke(token)
        # Sessions issued by `botserver tokens issue` never met the directory.
        return await self.oidc.end_session_url(id_token) if id_token else None


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
