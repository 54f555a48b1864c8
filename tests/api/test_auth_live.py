"""The complete browser sign-in over real sockets: the embedded directory and oidc-provider.

Both runs use the same client code in botserver; only the issuer differs.
The app is served by uvicorn on a loopback port chosen before it is built, so
its public URL (and with it the embedded issuer and the redirect URI) is real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from botserver.clock import FrozenClock
from botserver.services.signin import ZITADEL_ROLES_CLAIM, roles_from_claims
from tests.conftest import MakeAccount, started
from tests.support.idp import OidcProviderProcess
from tests.support.scim import add_user, get_user, scim_server
from tests.support.services import find_free_port
from tests.support.signin import (
    cheap_password_hashing,  # noqa: F401 - autouse fixture
    serving,
    sign_in,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def port() -> int:
    return find_free_port()


@pytest.fixture
def clock() -> FrozenClock:
    # The third-party provider stamps tokens with the real time.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def base_url(app: FastAPI, port: int) -> AsyncIterator[str]:
    async with serving(app, port) as url:
        yield url


async def use_session(http: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    """Validate and read /api/users/me with the cookie, then with the token as bearer."""
    validated = await http.get("/auth/validate")
    assert validated.status_code == 200 and validated.json()["valid"] is True
    by_cookie = await http.get("/api/users/me")
    assert by_cookie.status_code == 200
    token = http.cookies["botserver_session"]
    async with httpx.AsyncClient(base_url=base_url) as other:
        by_bearer = await other.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert by_bearer.json() == by_cookie.json()
    return dict(by_cookie.json())


async def log_out(http: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    response = await http.post(
        "/auth/logout",
        headers={"Origin": base_url, "X-CSRF-Token": http.cookies["botserver_csrf"]},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestEmbeddedDirectory:
    @pytest.fixture
    def settings_overrides(self, port: int) -> dict[str, Any]:
        return {"public_url": f"http://127.0.0.1:{port}"}

    async def test_browser_flow_over_http(self, base_url: str, make_account: MakeAccount) -> None:
        account = await make_account("alice", password=PASSWORD)
        async with httpx.AsyncClient(base_url=base_url) as http:
            discovery = (await http.get("/directory/.well-known/openid-configuration")).json()
            assert discovery["issuer"] == f"{base_url}/directory"

            callback = await sign_in(http, "alice", PASSWORD, return_to="/chat")

            assert callback.status_code == 302 and callback.headers["location"] == "/chat"
            me = await use_session(http, base_url)
            assert me["user_id"] == account.user_id and me["username"] == "alice"
            logged_out = await log_out(http, base_url)
            assert logged_out["end_session_url"].startswith(f"{base_url}/directory/logout?")
            assert (await http.get("/auth/validate")).status_code == 401


@pytest.fixture(scope="module")
def idp(port: int) -> Iterator[OidcProviderProcess]:
    provider = OidcProviderProcess(
        redirect_uris=[f"http://127.0.0.1:{port}/auth/callback"],
        post_logout_redirect_uris=[f"http://127.0.0.1:{port}/"],
        id_token_ttl=60,
    )
    started(provider, "the test OpenID provider")
    yield provider
    provider.stop()


class TestExternalDirectory:
    @pytest.fixture
    def settings_overrides(self, port: int, idp: OidcProviderProcess) -> dict[str, Any]:
        return {
            "public_url": f"http://127.0.0.1:{port}",
            "oidc_issuer": idp.issuer,
            "oidc_client_id": idp.client_id,
            "oidc_client_secret": idp.client_secret,
            "oidc_roles_claim": ZITADEL_ROLES_CLAIM,
            "oidc_admin_role": "admin",
        }

    async def test_browser_flow_provisions_users_with_roles(
        self, base_url: str, idp: OidcProviderProcess
    ) -> None:
        async with httpx.AsyncClient(base_url=base_url) as http:
            callback = await idp.alogin(
                http,
                f"{base_url}/auth/login?return_to=/chat",
                username="alice",
                password="alice-password",
            )
            assert str(callback).startswith(f"{base_url}/auth/callback?")
            answer = await http.get(str(callback))
            assert answer.status_code == 302 and answer.headers["location"] == "/chat"
            alice = await use_session(http, base_url)
            assert alice["username"] == "alice" and alice["roles"] == ["admin"]
            assert (alice["email"], alice["first_name"]) == ("alice@example.org", "Alice")

            logged_out = await log_out(http, base_url)
            end = urlsplit(logged_out["end_session_url"])
            assert f"{end.scheme}://{end.netloc}" == idp.issuer
            assert parse_qs(end.query)["id_token_hint"]

        async with httpx.AsyncClient(base_url=base_url) as http:
            callback = await idp.alogin(
                http, f"{base_url}/auth/login", username="bob", password="bob-password"
            )
            assert (await http.get(str(callback))).status_code == 302
            bob = await use_session(http, base_url)
            assert bob["username"] == "bob" and bob["roles"] == ["user"]
            embedded = await http.get("/directory/.well-known/openid-configuration")
            assert embedded.status_code == 404

    async def test_directory_role_names_are_kept(
        self, base_url: str, idp: OidcProviderProcess
    ) -> None:
        async with httpx.AsyncClient(base_url=base_url) as http:
            callback = await idp.alogin(
                http, f"{base_url}/auth/login", username="carol", password="carol-password"
            )
            assert (await http.get(str(callback))).status_code == 302

            carol = await use_session(http, base_url)

            assert carol["roles"] == ["support", "editor"]
            # Roles other than the admin role unlock nothing reserved for admins.
            admin_only = await http.get("/api/admin/users")
            assert admin_only.status_code == 403
            assert admin_only.json()["error"]["code"] == "FORBIDDEN"
            assert (await http.get("/api/bots")).status_code == 200

    async def test_replayed_code_is_refused(self, base_url: str, idp: OidcProviderProcess) -> None:
        async with httpx.AsyncClient(base_url=base_url) as http:
            callback = await idp.alogin(
                http, f"{base_url}/auth/login", username="bob", password="bob-password"
            )
            assert (await http.get(str(callback))).status_code == 302
            old_code = parse_qs(urlsplit(str(callback)).query)["code"][0]
        async with httpx.AsyncClient(base_url=base_url) as http:
            login = await http.get("/auth/login")
            fresh_state = parse_qs(urlsplit(login.headers["location"]).query)["state"][0]

            answer = await http.get(
                "/auth/callback", params={"code": old_code, "state": fresh_state}
            )

            assert answer.status_code == 401
            error = answer.json()["error"]
            assert error["code"] == "UNAUTHORIZED"
            assert error["message"] == "The directory refused the authorization code."
            assert "set-cookie" not in answer.headers
            assert (await http.get("/auth/validate")).status_code == 401

    async def test_expired_id_token_is_refused(
        self, base_url: str, idp: OidcProviderProcess, clock: FrozenClock
    ) -> None:
        async with httpx.AsyncClient(base_url=base_url) as http:
            callback = await idp.alogin(
                http, f"{base_url}/auth/login", username="bob", password="bob-password"
            )
            clock.advance(minutes=2)  # past the 60 s ID token, well within the state's life

            answer = await http.get(str(callback))

            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "UNAUTHORIZED"
            assert "expired" in answer.json()["error"]["message"]
            assert "set-cookie" not in answer.headers


SCIM_TOKEN = "scim-test-token"


class TestExternalDirectoryProfiles:
    @pytest.fixture
    def scim_url(self) -> Iterator[str]:
        with scim_server(SCIM_TOKEN) as url:
            yield url

    @pytest.fixture
    def settings_overrides(
        self, port: int, idp: OidcProviderProcess, scim_url: str
    ) -> dict[str, Any]:
        return {
            "public_url": f"http://127.0.0.1:{port}",
            "oidc_issuer": idp.issuer,
            "oidc_client_id": idp.client_id,
            "oidc_client_secret": idp.client_secret,
            "scim_url": scim_url,
            "scim_token": SCIM_TOKEN,
        }

    async def test_profile_update_reaches_the_directorys_user(
        self, base_url: str, idp: OidcProviderProcess, scim_url: str
    ) -> None:
        # The directory knows carol by her subject; its userName is not her local username.
        remote = add_user(
            scim_url,
            SCIM_TOKEN,
            {
                "userName": "carol.support@example.org",
                "externalId": "carol",
                "name": {"givenName": "Carol", "familyName": "Support"},
            },
        )
        async with httpx.AsyncClient(base_url=base_url) as http:
            callback = await idp.alogin(
                http, f"{base_url}/auth/login", username="carol", password="carol-password"
            )
            assert (await http.get(str(callback))).status_code == 302
            assert (await use_session(http, base_url))["username"] == "carol"
            bearer = {"Authorization": f"Bearer {http.cookies['botserver_session']}"}

            response = await http.put("/api/users/me", headers=bearer, json={"last_name": "Lead"})

        assert response.status_code == 200, response.text
        assert response.json()["last_name"] == "Lead"
        stored = get_user(scim_url, SCIM_TOKEN, remote["id"])
        assert stored["name"] == {**stored["name"], "givenName": "Carol", "familyName": "Lead"}


def test_roles_come_from_a_list_or_zitadel_object() -> None:
    plain = {"roles": ["viewer", "admin"]}
    zitadel = {ZITADEL_ROLES_CLAIM: {"admin": {"orgid": "1"}, "support": {"orgid": "1"}}}
    assert roles_from_claims(plain, "roles", "admin") == ["viewer", "admin"]
    assert roles_from_claims(zitadel, ZITADEL_ROLES_CLAIM, "admin") == ["admin", "support"]
    assert roles_from_claims({}, "roles", "admin") == ["user"]


def test_only_the_configured_admin_role_grants_admin() -> None:
    claims = {"roles": ["superuser", "admin", "viewer"]}
    assert roles_from_claims(claims, "roles", "superuser") == ["admin", "viewer"]
    zitadel = {ZITADEL_ROLES_CLAIM: {"admin": {"orgid": "1"}}}
    assert roles_from_claims(zitadel, ZITADEL_ROLES_CLAIM, "superuser") == ["user"]
