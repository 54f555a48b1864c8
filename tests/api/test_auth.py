"""Browser sign-in against the embedded directory, in process, and everything that must fail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt

from botserver.clock import FrozenClock
from botserver.directory.embedded.provider import CLIENT_ID
from botserver.services.container import Services
from tests.conftest import MakeAccount
from tests.support.signin import (
    callback_url,
    cheap_password_hashing,  # noqa: F401 - autouse fixture
    sign_in,
    start_sign_in,
)

PASSWORD = "correct horse battery staple"
ORIGIN = "http://testserver"
DISCOVERY = "/directory/.well-known/openid-configuration"

Edit = Callable[[str], Awaitable[str]]


class TokenTamperer(httpx.AsyncBaseTransport):
    """Botserver's way to its directory: can rewrite the ID token, rewrite an answer or fail.

    `edit` rewrites the ID token the token endpoint returns; `answers` maps a directory path
    to a function that rewrites its JSON answer; a path in `down` fails to connect.
    """

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.edit: Edit | None = None
        self.answers: dict[str, Callable[[Any], Any]] = {}
        self.down: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in self.down:
            raise httpx.ConnectError("directory down", request=request)
        response = await self.inner.handle_async_request(request)
        if path in self.answers:
            answer = json.loads(await response.aread())
            return httpx.Response(response.status_code, json=self.answers[path](answer))
        if self.edit is None or not path.endswith("/directory/token"):
            return response
        answer = json.loads(await response.aread())
        answer["id_token"] = await self.edit(answer["id_token"])
        return httpx.Response(response.status_code, json=answer)


@pytest.fixture
def tamperer(app: FastAPI, services: Services) -> TokenTamperer:
    transport = TokenTamperer(app)
    services.oidc.transport = transport
    return transport


@pytest.fixture
async def browser(app: FastAPI, tamperer: TokenTamperer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        yield http


@pytest.fixture
async def alice(make_account: MakeAccount) -> Any:
    return await make_account("alice", password=PASSWORD)


def resign(services: Services, **changes: Any) -> Edit:
    """An edit that re-signs the ID token with the provider's own key after changing claims."""

    async def edit(id_token: str) -> str:
        key = await services.directory.keys.active()
        token = jwt.decode(id_token, key)
        claims = {**token.claims, **changes}
        return jwt.encode(token.header, claims, key)

    return edit


async def audit_kinds(services: Services) -> list[str]:
    async with services.db.unit() as uow:
        events, _ = await uow.audit.page(100, 0)
    return [event.kind for event in reversed(events)]


def assert_error(response: httpx.Response, status: int, code: str, words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert words in error["message"]
    assert "set-cookie" not in response.headers


# The complete flow.


async def test_sign_in_sets_session_cookies_and_returns(
    browser: httpx.AsyncClient, alice: Any, services: Services
) -> None:
    authorize = await start_sign_in(browser, "/chat?x=1")
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith("http://testserver/directory/authorize?")
    assert query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(query)

    response = await sign_in(browser, "alice", PASSWORD, "/chat?x=1")

    assert response.status_code == 302
    assert response.headers["location"] == "/chat?x=1"
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("botserver_session="))
    csrf = next(c for c in cookies if c.startswith("botserver_csrf="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Secure" not in session
    assert "HttpOnly" not in csrf
    spent = next(c for c in cookies if c.startswith("botserver_signin="))
    assert "Max-Age=0" in spent and "Path=/auth" in spent
    validated = await browser.get("/auth/validate")
    assert validated.status_code == 200
    assert validated.json()["user_id"] == alice.user_id
    assert "sign_in" in await audit_kinds(services)
    assert "login_succeeded" in await audit_kinds(services)


async def test_session_works_as_cookie_and_as_bearer(
    browser: httpx.AsyncClient, alice: Any, app: FastAPI
) -> None:
    response = await sign_in(browser, "alice", PASSWORD)
    assert response.headers["location"] == "/"
    token = browser.cookies["botserver_session"]

    by_cookie = await browser.get("/api/users/me")
    bearer_headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=ORIGIN, headers=bearer_headers
    ) as bearer:
        by_bearer = await bearer.get("/api/users/me")
    assert by_cookie.json()["username"] == by_bearer.json()["username"] == "alice"


async def test_sign_in_over_https_proxy_marks_cookies_secure(
    browser: httpx.AsyncClient, alice: Any, services: Services
) -> None:
    services.settings.trusted_proxies = ["127.0.0.1/32"]
    callback = await callback_url(browser, "alice", PASSWORD)

    spoofed = await browser.get(callback, headers={"X-Forwarded-Proto": "https"})

    # The ASGI test client's peer is 127.0.0.1, the trusted proxy, so the header counts.
    assert all("Secure" in c for c in spoofed.headers.get_list("set-cookie"))


# Refusals before any redirect.


OFF_SITE = ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/a\r\nb", "chat"]


async def test_login_binds_the_sign_in_to_this_browser(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/auth/login")

    assert response.status_code == 302
    [binding] = response.headers.get_list("set-cookie")
    assert binding.startswith("botserver_signin=")
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/auth", "Max-Age=600"):
        assert attribute in binding
    assert "Secure" not in binding
    value = browser.cookies["botserver_signin"]
    assert len(value) >= 43 and value not in response.headers["location"]


async def test_login_refuses_off_site_return_to(browser: httpx.AsyncClient) -> None:
    for return_to in OFF_SITE:
        response = await browser.get("/auth/login", params={"return_to": return_to})

        assert_error(response, 400, "BAD_REQUEST", "return_to")
        assert "location" not in response.headers


# Refusals at the callback: never a cookie, always audited.


async def test_forged_state_is_refused(browser: httpx.AsyncClient, services: Services) -> None:
    response = await browser.get("/auth/callback", params={"code": "x", "state": "forged"})

    assert_error(response, 400, "BAD_REQUEST", "state")
    assert "sign_in_failed" in await audit_kinds(services)


async def test_reused_state_is_refused(browser: httpx.AsyncClient, alice: Any) -> None:
    callback = await callback_url(browser, "alice", PASSWORD)
    assert (await browser.get(callback)).status_code == 302
    browser.cookies.clear()

    replayed = await browser.get(callback)

    assert_error(replayed, 400, "BAD_REQUEST", "already used")


async def test_callback_carried_to_another_browser_is_refused(
    browser: httpx.AsyncClient, alice: Any, app: FastAPI, services: Services
) -> None:
    # The attacker signs in as alice and stops short of the callback...
    callback = await callback_url(browser, "alice", PASSWORD)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as victim:
        # ...the victim, with a sign-in of its own under way, is lured to the callback URL.
        await start_sign_in(victim)

        response = await victim.get(callback)

        assert_error(response, 400, "BAD_REQUEST", "started in another browser")
        assert (await victim.get("/auth/validate")).status_code == 401
    assert "sign_in_failed" in await audit_kinds(services)
    # The state is spent: the leaked URL signs no one in, not even where it started.
    assert_error(await browser.get(callback), 400, "BAD_REQUEST", "already used")


async def test_callback_without_the_sign_in_cookie_is_refused(
    browser: httpx.AsyncClient, alice: Any
) -> None:
    callback = await callback_url(browser, "alice", PASSWORD)
    del browser.cookies["botserver_signin"]

    response = await browser.get(callback)

    assert_error(response, 400, "BAD_REQUEST", "no sign-in cookie")
    assert (await browser.get("/auth/validate")).status_code == 401


async def test_expired_state_is_refused(
    browser: httpx.AsyncClient, alice: Any, clock: FrozenClock
) -> None:
    callback = await callback_url(browser, "alice", PASSWORD)
    clock.advance(minutes=11)

    response = await browser.get(callback)

    assert_error(response, 400, "BAD_REQUEST", "took too long")


async def test_directory_error_is_refused(browser: httpx.AsyncClient) -> None:
    authorize = await start_sign_in(browser)
    state = parse_qs(urlsplit(authorize).query)["state"][0]

    response = await browser.get(
        "/auth/callback", params={"error": "access_denied", "state": state}
    )

    assert_error(response, 401, "UNAUTHORIZED", "did not sign you in")


async def test_callback_without_a_code_is_refused(browser: httpx.AsyncClient) -> None:
    authorize = await start_sign_in(browser)
    state = parse_qs(urlsplit(authorize).query)["state"][0]

    response = await browser.get("/auth/callback", params={"state": state})

    assert_error(response, 400, "BAD_REQUEST", "The callback carries no authorization code.")


async def test_replayed_authorization_code_is_refused(
    browser: httpx.AsyncClient, alice: Any, services: Services
) -> None:
    callback = await callback_url(browser, "alice", PASSWORD)
    assert (await browser.get(callback)).status_code == 302
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    browser.cookies.clear()
    authorize = await start_sign_in(browser)
    fresh_state = parse_qs(urlsplit(authorize).query)["state"][0]

    response = await browser.get("/auth/callback", params={"code": old_code, "state": fresh_state})

    assert_error(response, 401, "UNAUTHORIZED", "The directory refused the authorization code.")
    assert (await browser.get("/auth/validate")).status_code == 401
    assert "sign_in_failed" in await audit_kinds(services)


async def test_wrong_nonce_is_refused(
    browser: httpx.AsyncClient, alice: Any, services: Services, tamperer: TokenTamperer
) -> None:
    tamperer.edit = resign(services, nonce="not-the-nonce")

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 401, "UNAUTHORIZED", "nonce")


async def test_tampered_id_token_is_refused(
    browser: httpx.AsyncClient, alice: Any, tamperer: TokenTamperer
) -> None:
    async def flip_payload(id_token: str) -> str:
        header, payload, signature = id_token.split(".")
        swapped = "A" if payload[-2] != "A" else "B"
        return ".".join([header, payload[:-2] + swapped + payload[-1:], signature])

    tamperer.edit = flip_payload

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 401, "UNAUTHORIZED", "signature")


async def test_expired_id_token_is_refused(
    browser: httpx.AsyncClient,
    alice: Any,
    services: Services,
    tamperer: TokenTamperer,
    clock: FrozenClock,
) -> None:
    past = int(clock.timestamp()) - 3600
    tamperer.edit = resign(services, iat=past - 600, exp=past)

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 401, "UNAUTHORIZED", "expired")


async def test_unknown_issuer_is_refused(
    browser: httpx.AsyncClient, alice: Any, services: Services, tamperer: TokenTamperer
) -> None:
    tamperer.edit = resign(services, iss="https://issuer.evil.example")

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 401, "UNAUTHORIZED", "iss")


async def test_token_for_another_audience_is_refused(
    browser: httpx.AsyncClient, alice: Any, services: Services, tamperer: TokenTamperer
) -> None:
    tamperer.edit = resign(services, aud="someone-else")

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 401, "UNAUTHORIZED", "aud")


async def test_token_for_several_audiences_without_our_azp_is_refused(
    browser: httpx.AsyncClient, alice: Any, services: Services, tamperer: TokenTamperer
) -> None:
    tamperer.edit = resign(services, aud=[CLIENT_ID, "someone-else"], azp="someone-else")

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 401, "UNAUTHORIZED", "The ID token's azp claim is not valid.")


async def test_discovery_naming_another_issuer_is_refused(
    browser: httpx.AsyncClient, tamperer: TokenTamperer
) -> None:
    def other_issuer(document: dict[str, Any]) -> dict[str, Any]:
        return {**document, "issuer": "https://issuer.evil.example"}

    tamperer.answers[DISCOVERY] = other_issuer

    response = await browser.get("/auth/login")

    assert_error(
        response,
        503,
        "SERVICE_UNAVAILABLE",
        "The directory's discovery document names another issuer.",
    )
    assert "location" not in response.headers


async def test_directory_down_at_login_answers_503(
    browser: httpx.AsyncClient, tamperer: TokenTamperer
) -> None:
    tamperer.down.add(DISCOVERY)

    response = await browser.get("/auth/login")

    assert_error(
        response, 503, "SERVICE_UNAVAILABLE", "The directory's discovery document is unavailable."
    )


async def test_token_endpoint_down_answers_503(
    browser: httpx.AsyncClient, alice: Any, tamperer: TokenTamperer
) -> None:
    callback = await callback_url(browser, "alice", PASSWORD)
    tamperer.down.add("/directory/token")

    response = await browser.get(callback)

    assert_error(response, 503, "SERVICE_UNAVAILABLE", "The directory's token endpoint failed.")
    assert (await browser.get("/auth/validate")).status_code == 401


async def test_malformed_key_set_answers_503(
    browser: httpx.AsyncClient, alice: Any, tamperer: TokenTamperer
) -> None:
    tamperer.answers["/directory/jwks"] = lambda _keys: ["not", "a", "key", "set"]

    response = await sign_in(browser, "alice", PASSWORD)

    assert_error(response, 503, "SERVICE_UNAVAILABLE", "The directory's key set is malformed.")


# Sessions after sign-in: CSRF, origin, logout, expiry.


async def signed_in(browser: httpx.AsyncClient) -> str:
    response = await sign_in(browser, "alice", PASSWORD)
    assert response.status_code == 302
    return browser.cookies["botserver_csrf"]


async def test_cookie_post_without_csrf_token_is_refused(
    browser: httpx.AsyncClient, alice: Any
) -> None:
    await signed_in(browser)

    response = await browser.post("/auth/logout", headers={"Origin": ORIGIN})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert "CSRF" in response.json()["error"]["message"]
    assert (await browser.get("/auth/validate")).status_code == 200


async def test_cookie_post_with_wrong_csrf_token_is_refused(
    browser: httpx.AsyncClient, alice: Any
) -> None:
    csrf = await signed_in(browser)

    response = await browser.post(
        "/auth/logout", headers={"Origin": ORIGIN, "X-CSRF-Token": csrf[::-1]}
    )

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    non_ascii = await browser.post(
        "/auth/logout", headers={"Origin": ORIGIN, "X-CSRF-Token": "caf\u00e9".encode("latin-1")}
    )
    assert non_ascii.status_code == 403


async def test_cookie_from_another_origin_is_refused(
    browser: httpx.AsyncClient, alice: Any
) -> None:
    csrf = await signed_in(browser)

    response = await browser.post(
        "/auth/logout",
        headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf},
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert "origin" in response.json()["error"]["message"]
    assert (await browser.get("/auth/validate")).status_code == 200


async def test_cookie_logout_with_csrf_clears_session_and_offers_end_session(
    browser: httpx.AsyncClient, alice: Any
) -> None:
    csrf = await signed_in(browser)
    assert (await browser.get("/auth/csrf")).json() == {"csrf_token": csrf}

    response = await browser.post("/auth/logout", headers={"Origin": ORIGIN, "X-CSRF-Token": csrf})

    body = response.json()
    assert response.status_code == 200
    assert body["success"] is True and body["message"] == "Logged out successfully"
    end = urlsplit(body["end_session_url"])
    params = parse_qs(end.query)
    assert f"{end.scheme}://{end.netloc}{end.path}" == "http://testserver/directory/logout"
    assert params["post_logout_redirect_uri"] == ["http://testserver/"]
    assert params["id_token_hint"]
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith('botserver_session=""') or "Max-Age=0" in c for c in cleared)
    followed = await browser.get(body["end_session_url"])
    assert followed.status_code == 303 and followed.headers["location"] == "http://testserver/"
    assert (await browser.get("/auth/validate")).status_code == 401


async def test_bearer_logout_needs_no_csrf_and_revokes_everywhere(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()

    response = await client.post("/auth/logout", headers=account.headers)

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "message": "Logged out successfully",
        "end_session_url": None,
    }
    for path in ("/auth/validate", "/api/users/me"):
        again = await client.get(path, headers=account.headers)
        assert again.status_code == 401
        assert again.json()["error"]["code"] == "UNAUTHORIZED"


async def test_expired_login_session_fails_everywhere(
    browser: httpx.AsyncClient, alice: Any, clock: FrozenClock
) -> None:
    await signed_in(browser)
    token = browser.cookies["botserver_session"]
    clock.advance(hours=24, seconds=1)

    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        for path in ("/auth/validate", "/api/users/me"):
            response = await browser.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "UNAUTHORIZED"
            assert "expired" in response.json()["error"]["message"]
