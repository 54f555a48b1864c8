"""The OpenID Connect client botserver uses to sign people in, with any issuer.

The same code talks to the embedded provider and to Zitadel or Keycloak: it
reads the issuer's discovery document (cached), builds the authorization
request with state, nonce and PKCE (S256), redeems the code at the token
endpoint as a confidential client and verifies the ID token against the
issuer's JWKS. Protocol pieces come from Authlib (request building, PKCE)
and joserfc (JWS and claims checks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from botserver.clock import Clock
from botserver.config import Settings
from botserver.directory.embedded.provider import (
    CLIENT_ID,
    embedded_client_secret,
    embedded_issuer,
)

logger = logging.getLogger(__name__)

METADATA_TTL = timedelta(hours=1)
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
CLOCK_LEEWAY_SECONDS = 30


class OidcError(Exception):
    """A sign-in step failed; `status` is 400 for a bad request, 401 for a refused identity."""

    def __init__(self, message: str, reason: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class ClientConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    redirect_uri: str
    post_logout_redirect_uri: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientConfig:
        if settings.embedded_directory:
            issuer, client_id = embedded_issuer(settings), CLIENT_ID
            secret = embedded_client_secret(settings)
        else:
            issuer, client_id = str(settings.oidc_issuer).rstrip("/"), settings.oidc_client_id
            secret = settings.oidc_client_secret or ""
        return cls(
            issuer=issuer,
            client_id=client_id,
            client_secret=secret,
            scopes=settings.oidc_scopes,
            redirect_uri=f"{settings.public_url}/auth/callback",
            post_logout_redirect_uri=f"{settings.public_url}/",
        )


class OidcClient:
    """One configured issuer. `transport` may be replaced (tests route it to an ASGI app)."""

    def __init__(
        self,
        config: ClientConfig,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.transport = transport
        self._metadata: dict[str, Any] | None = None
        self._metadata_until = clock.now()
        self._keys: KeySet | None = None

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, timeout=10, follow_redirects=False)

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning(
                "Could not read the issuer's %s at %s: %s.", what, url, type(exc).__name__
            )
            raise OidcError(
                f"The directory's {what} is unavailable.", "directory_down", 503
            ) from exc
        if not isinstance(data, dict):
            raise OidcError(f"The directory's {what} is malformed.", "directory_down", 503)
        return data

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document, cached for an hour."""
        if self._metadata is None or self.clock.now() >= self._metadata_until:
            url = f"{self.config.issuer}/.well-known/openid-configuration"
            data = await self._get_json(url, "discovery document")
            if data.get("issuer") != self.config.issuer:
                raise OidcError(
                    "The directory's discovery document names another issuer.", "wrong_issuer", 503
                )
            self._metadata = data
            self._metadata_until = self.clock.now() + METADATA_TTL
        return self._metadata

    async def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        metadata = await self.metadata()
        uri: str = prepare_grant_uri(
            metadata["authorization_endpoint"],
            client_id=self.config.client_id,
            response_type="code",
            redirect_uri=self.config.redirect_uri,
            scope=self.config.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return uri

    async def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        """Redeem the code at the token endpoint (client_secret_basic)."""
        metadata = await self.metadata()
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.config.redirect_uri,
            code_verifier=code_verifier,
        )
        try:
            async with self._http() as http:
                response = await http.post(
                    metadata["token_endpoint"],
                    content=body,
                    auth=httpx.BasicAuth(self.config.client_id, self.config.client_secret),
                    headers={
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Accept": "application/json",
                    },
                )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("The token endpoint did not answer usefully: %s.", type(exc).__name__)
            raise OidcError(
                "The directory's token endpoint failed.", "directory_down", 503
            ) from exc
        if response.status_code != 200 or not isinstance(answer, dict) or "error" in answer:
            error = answer.get("error", "unknown") if isinstance(answer, dict) else "unknown"
            logger.info("The directory refused the authorization code (%s).", error)
            raise OidcError("The directory refused the authorization code.", "code_refused")
        if not isinstance(answer.get("id_token"), str):
            raise OidcError("The directory returned no ID token.", "no_id_token")
        return answer

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            data = await self._get_json(metadata["jwks_uri"], "key set")
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise OidcError("The directory's key set is malformed.", "bad_jwks", 503) from exc
        return self._keys

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Check signature (JWKS), iss, aud, exp, iat and nonce; answer the claims."""
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), algorithms=ALGORITHMS)
            except (JoseError, ValueError):
                # The issuer may have rotated its keys since we cached them: refetch once.
                token = jwt.decode(
                    id_token, await self._key_set(refresh=True), algorithms=ALGORITHMS
                )
        except (JoseError, ValueError) as exc:
            logger.info("Refused an ID token: %s.", type(exc).__name__)
            raise OidcError("The ID token's signature is not valid.", "bad_signature") from exc

        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock.timestamp()),
            leeway=CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "value": self.config.issuer},
            aud={"essential": True, "value": self.config.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            claim = getattr(exc, "claim", None) or "claims"
            logger.info("Refused an ID token: %s (%s).", type(exc).__name__, claim)
            if claim == "exp" or type(exc).__name__ == "ExpiredTokenError":
                raise OidcError("The ID token has expired.", "expired_id_token") from exc
            raise OidcError(f"The ID token's {claim} claim is not valid.", f"bad_{claim}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("The ID token's azp claim is not valid.", "bad_azp")
        return claims

    async def end_session_url(self, id_token: str | None) -> str | None:
        """The issuer's RP-initiated logout URL, when it offers one."""
        try:
            metadata = await self.metadata()
        except OidcError:
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not endpoint:
            return None
        params = {
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": self.config.post_logout_redirect_uri,
        }
        if id_token:
            params["id_token_hint"] = id_token
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params)}"
