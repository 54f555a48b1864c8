"""The embedded OpenID provider's rules: authorize, password check, codes, tokens, userinfo.

Only one client exists: botserver itself (`client_id` "botserver"), a
confidential client whose secret is derived from BOTSERVER_SECRET_KEY, so
every instance agrees on it without storing it. Codes and access tokens are
random, stored only as SHA-256 hashes, single use and short-lived. A code
presented twice is refused and the access tokens it produced are revoked
(RFC 6749 §4.1.2).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from botserver.clock import Clock, utc
from botserver.config import Settings
from botserver.directory.embedded.keys import ALGORITHM, SigningKeys
from botserver.errors import ApiError
from botserver.services.passwords import verify_password
from botserver.storage.db import Database
from botserver.storage.models import AccessToken, AuthorizationCode, LoginThrottle, User
from botserver.storage.unit import UnitOfWork

logger = logging.getLogger(__name__)

CLIENT_ID = "botserver"
CODE_LIFETIME = timedelta(minutes=2)
ACCESS_TOKEN_LIFETIME = timedelta(minutes=10)
ID_TOKEN_LIFETIME = timedelta(minutes=10)
LOGIN_FORM_LIFETIME = timedelta(minutes=10)
SCOPES = ("openid", "profile", "email")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _derive(settings: Settings, purpose: str) -> str:
    return hmac.new(settings.secret_key.encode(), purpose.encode(), "sha256").hexdigest()


def embedded_client_secret(settings: Settings) -> str:
    return _derive(settings, "embedded-directory:client-secret")


def embedded_issuer(settings: Settings) -> str:
    return f"{settings.public_url}/directory"


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str
    nonce: str | None
    code_challenge: str

    def as_claims(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
        }


class LoginRefused(Exception):
    """The login form is shown again with `message` and answered with `status`."""

    def __init__(self, message: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass
class _Audit:
    """One login attempt's audit entries; an unknown username is recorded as typed."""

    uow: UnitOfWork
    now: datetime
    user_id: str | None
    ip: str | None
    counter: User | LoginThrottle
    username: str

    async def record(self, kind: str, **details: Any) -> None:
        if isinstance(self.counter, LoginThrottle):
            details = {"username": self.username[:150], "reason": "unknown_user", **details}
        await self.uow.audit.record(
            kind, self.now, user_id=self.user_id, ip=self.ip, details=details
        )


class TokenError(Exception):
    """An OAuth 2.0 token-endpoint error (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class EmbeddedProvider:
    def __init__(self, db: Database, clock: Clock, settings: Settings, keys: SigningKeys) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.keys = keys
        self.issuer = embedded_issuer(settings)
        self._form_key = OctKey.import_key(_derive(settings, "embedded-directory:login-form"))

    @property
    def redirect_uris(self) -> set[str]:
        return {f"{self.settings.public_url}/auth/callback"}

    @property
    def post_logout_redirect_uris(self) -> set[str]:
        return {f"{self.settings.public_url}/"}

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "email",
                "given_name",
                "family_name",
                "roles",
            ],
        }

    # Authorization endpoint.

    def check_request(self, params: dict[str, str]) -> AuthorizationRequest:
        """Validate an authorization request; errors are shown, never redirected."""
        if params.get("client_id") != CLIENT_ID:
            raise ApiError.bad_request("Unknown client_id.")
        if params.get("redirect_uri") not in self.redirect_uris:
            raise ApiError.bad_request("redirect_uri is not registered for this client.")
        if params.get("response_type") != "code":
            raise ApiError.bad_request("Only response_type=code is supported.")
        scopes = params.get("scope", "").split()
        if "openid" not in scopes:
            raise ApiError.bad_request("The openid scope is required.")
        if not params.get("state"):
            raise ApiError.bad_request("state is required.")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise ApiError.bad_request("PKCE with code_challenge_method=S256 is required.")
        return AuthorizationRequest(
            client_id=CLIENT_ID,
            redirect_uri=params["redirect_uri"],
            scope=" ".join(scope for scope in scopes if scope in SCOPES),
            state=params["state"][:512],
            nonce=(params.get("nonce") or None),
            code_challenge=params["code_challenge"][:128],
        )

    def seal(self, request: AuthorizationRequest) -> str:
        """The signed reference the login form carries back."""
        now = int(self.clock.timestamp())
        claims = {**request.as_claims(), "exp": now + int(LOGIN_FORM_LIFETIME.total_seconds())}
        return jwt.encode({"alg": "HS256"}, claims, self._form_key)

    def unseal(self, sealed: str) -> AuthorizationRequest:
        try:
            token = jwt.decode(sealed, self._form_key, algorithms=["HS256"])
            jwt.JWTClaimsRegistry(
                now=int(self.clock.timestamp()), exp={"essential": True}
            ).validate(token.claims)
            claims = token.claims
            return AuthorizationRequest(
                client_id=str(claims["client_id"]),
                redirect_uri=str(claims["redirect_uri"]),
                scope=str(claims["scope"]),
                state=str(claims["state"]),
                nonce=claims.get("nonce"),
                code_challenge=str(claims["code_challenge"]),
            )
        except (JoseError, KeyError, ValueError) as exc:
            raise ApiError.bad_request(
                "The sign-in form expired or was altered; start signing in again."
            ) from exc

    async def authenticate(self, username: str, password: str, ip: str | None) -> User:
        """Check a password, slowing down and then locking after repeated failures.

        A username without an account (or without a password) counts, slows down
        and locks in `login_throttles` exactly as an account does, so the form's
        answers never tell which usernames exist. Every attempt is audited.

        The counter's row stays locked from the read to the commit, so parallel
        attempts at one username take turns: each sees the failures and the
        pause or lock the previous one wrote, and no more passwords are tried
        than a sequence of attempts would get.
        """
        now = self.clock.now()
        refused: LoginRefused | None = None
        async with self.db.unit() as uow:
            user = await uow.users.by_username(username, for_update=True)
            counter: User | LoginThrottle
            if user is not None and user.password_hash:
                counter = user
            else:
                counter = await self._throttle(uow, username, now)
            audit = _Audit(uow, now, user.id if user else None, ip, counter, username)

            refused = await self._waiting(audit)
            if refused is None:
                # Argon2id takes a noticeable time: keep it off the event loop.
                password_hash = user.password_hash if counter is user and user else None
                if await asyncio.to_thread(verify_password, password_hash, password):
                    assert user is not None
                    user.failed_logins = 0
                    user.locked_until = None
                    await uow.audit.record("login_succeeded", now, user_id=user.id, ip=ip)
                else:
                    refused = await self._count_failure(audit)
        if refused is not None:
            raise refused
        assert user is not None
        return user

    async def _throttle(self, uow: UnitOfWork, username: str, now: datetime) -> LoginThrottle:
        # Counters idle for a day are forgotten, so the table cannot grow without end.
        idle = timedelta(days=1, minutes=self.settings.login_lockout_minutes)
        await uow.directory.purge_throttles(now - idle)
        return await uow.directory.throttle(_hash(username), now)

    async def _waiting(self, audit: _Audit) -> LoginRefused | None:
        """The refusal while a pause or a lock runs; None when a password may be tried."""
        counter, now = audit.counter, audit.now
        if counter.locked_until is None or utc(counter.locked_until) <= now:
            return None
        wait = math.ceil((utc(counter.locked_until) - now).total_seconds())
        locked = counter.failed_logins >= self.settings.login_lockout_after
        await audit.record("login_failed", reason="locked" if locked else "throttled")
        if locked:
            return LoginRefused(
                "This account is locked after repeated failed sign-ins. "
                f"Try again in {math.ceil(wait / 60)} minutes.",
                403,
                wait,
            )
        return LoginRefused(
            f"Too many failed attempts. Wait {wait} seconds and try again.", 429, wait
        )

    async def _count_failure(self, audit: _Audit) -> LoginRefused:
        settings = self.settings
        counter, now = audit.counter, audit.now
        # A lock that ran out starts a fresh count.
        failures = (
            counter.failed_logins if counter.failed_logins < settings.login_lockout_after else 0
        )
        failures += 1
        counter.failed_logins = failures
        if isinstance(counter, LoginThrottle):
            counter.updated_at = now
        await audit.record("login_failed", failures=failures)
        if failures >= settings.login_lockout_after:
            counter.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            await audit.record("account_locked", minutes=settings.login_lockout_minutes)
            if isinstance(counter, User):
                logger.info(
                    "Locked account %s after %s failed sign-ins.", counter.username, failures
                )
            return LoginRefused(
                "This account is locked after repeated failed sign-ins. Try again in "
                f"{math.ceil(settings.login_lockout_minutes)} minutes.",
                403,
                int(settings.login_lockout_minutes * 60),
            )
        if failures >= settings.login_slowdown_after:
            # Each failure past the threshold doubles the wait before the next try.
            delay = 2 ** (failures - settings.login_slowdown_after)
            counter.locked_until = now + timedelta(seconds=delay)
        return LoginRefused("Wrong username or password.", 401)

    async def issue_code(self, request: AuthorizationRequest, user: User) -> str:
        """Store a fresh code and answer the redirect back to the client."""
        code = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.unit() as uow:
            await uow.directory.add_code(
                AuthorizationCode(
                    code_hash=_hash(code),
                    client_id=request.client_id,
                    user_id=user.id,
                    redirect_uri=request.redirect_uri,
                    scope=request.scope,
                    nonce=request.nonce,
                    code_challenge=request.code_challenge,
                    code_challenge_method="S256",
                    auth_time=now,
                    expires_at=now + CODE_LIFETIME,
                )
            )
        query = urlencode({"code": code, "state": request.state, "iss": self.issuer})
        return f"{request.redirect_uri}?{query}"

    # Token endpoint.

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> None:
        expected = embedded_client_secret(self.settings)
        if client_id != CLIENT_ID or not hmac.compare_digest(
            (client_secret or "").encode(), expected.encode()
        ):
            raise TokenError("invalid_client", "Client authentication failed.", 401)

    async def exchange(self, form: dict[str, str]) -> dict[str, Any]:
        """Redeem an authorization code for an ID token and an access token."""
        if form.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type", "Only authorization_code is supported.")
        code = form.get("code") or ""
        verifier = form.get("code_verifier") or ""
        code_hash = _hash(code)
        now = self.clock.now()
        async with self.db.unit() as uow:
            stored = await uow.directory.get_code(code_hash)
            if stored is None:
                raise TokenError("invalid_grant", "The authorization code is not valid.")
            if not await uow.directory.mark_code_used(code_hash, now):
                await uow.directory.revoke_tokens_from_code(code_hash, now)
                replayed = True
            else:
                replayed = False
            user = await uow.users.get(stored.user_id)
        if replayed:
            logger.warning("An authorization code was presented twice; its tokens are revoked.")
            raise TokenError("invalid_grant", "The authorization code was already used.")
        if utc(stored.expires_at) <= now:
            raise TokenError("invalid_grant", "The authorization code has expired.")
        if form.get("redirect_uri") != stored.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri does not match the authorization.")
        if not verifier or not compare_s256_code_challenge(verifier, stored.code_challenge):
            raise TokenError("invalid_grant", "The PKCE code_verifier does not match.")
        if user is None:
            raise TokenError("invalid_grant", "The user no longer exists.")

        access_token = secrets.token_urlsafe(32)
        async with self.db.unit() as uow:
            await uow.directory.add_access_token(
                AccessToken(
                    token_hash=_hash(access_token),
                    client_id=stored.client_id,
                    user_id=user.id,
                    scope=stored.scope,
                    expires_at=now + ACCESS_TOKEN_LIFETIME,
                    code_hash=code_hash,
                )
            )
        id_token = await self.sign_id_token(user, stored.nonce, utc(stored.auth_time))
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            "scope": stored.scope,
            "id_token": id_token,
        }

    async def sign_id_token(
        self, user: User, nonce: str | None, auth_time: datetime | None = None
    ) -> str:
        key = await self.keys.active()
        now = int(self.clock.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.id,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + int(ID_TOKEN_LIFETIME.total_seconds()),
            "auth_time": int(auth_time.timestamp()) if auth_time else now,
            **_profile_claims(user),
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}, claims, key)

    # Userinfo and end-session.

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        now = self.clock.now()
        async with self.db.unit() as uow:
            stored = await uow.directory.get_access_token(_hash(access_token))
            user = await uow.users.get(stored.user_id) if stored else None
        if (
            stored is None
            or user is None
            or stored.revoked_at is not None
            or utc(stored.expires_at) <= now
        ):
            raise TokenError("invalid_token", "The access token is invalid or has expired.", 401)
        return {"sub": user.id, **_profile_claims(user)}

    async def end_session(self, id_token_hint: str | None, redirect_uri: str | None) -> str | None:
        """Where to send the browser after sign-out, or None to show a signed-out page."""
        if redirect_uri is None:
            return None
        if redirect_uri not in self.post_logout_redirect_uris:
            raise ApiError.bad_request("post_logout_redirect_uri is not registered.")
        if id_token_hint:
            # The hint must be one of ours; an expired one is fine (RFC: OIDC RP-initiated logout).
            keys = await self.keys.jwks()
            try:
                key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
                jwt.decode(id_token_hint, key_set, algorithms=[ALGORITHM])
            except (JoseError, ValueError) as exc:
                raise ApiError.bad_request("id_token_hint is not an ID token of ours.") from exc
        return redirect_uri


def _profile_claims(user: User) -> dict[str, Any]:
    claims: dict[str, Any] = {"preferred_username": user.username, "roles": list(user.roles or [])}
    if user.email:
        claims["email"] = user.email
    if user.first_name:
        claims["given_name"] = user.first_name
    if user.last_name:
        claims["family_name"] = user.last_name
    return claims
