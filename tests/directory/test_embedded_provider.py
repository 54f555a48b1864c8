"""The embedded OpenID provider on its own: discovery, keys, the login form, codes, lock-out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from botserver.clock import FrozenClock
from botserver.directory.embedded.provider import embedded_client_secret
from botserver.services.container import Services
from tests.conftest import MakeAccount
from tests.support.signin import (
    cheap_password_hashing,  # noqa: F401 - autouse fixture
    login_form,
    submit_login,
)

PASSWORD = "correct horse battery staple"
ISSUER = "http://testserver/directory"
REDIRECT_URI = "http://testserver/auth/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(challenge: str, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": "botserver",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email",
        "state": "state-1",
        "nonce": "nonce-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return f"{ISSUER}/authorize?{urlencode(params)}"


async def get_code(client: httpx.AsyncClient, challenge: str, username: str) -> str:
    answer = await submit_login(client, authorize_url(challenge), username, PASSWORD)
    assert answer.status_code == 303, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["state-1"] and query["iss"] == [ISSUER]
    return query["code"][0]


async def redeem(
    client: httpx.AsyncClient, services: Services, code: str, verifier: str
) -> httpx.Response:
    return await client.post(
        f"{ISSUER}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=("botserver", embedded_client_secret(services.settings)),
    )


async def audit_kinds(services: Services) -> list[str]:
    async with services.db.unit() as uow:
        events, _ = await uow.audit.page(200, 0)
    return [event.kind for event in reversed(events)]


async def test_discovery_and_rotating_keys(client: httpx.AsyncClient, services: Services) -> None:
    discovery = (await client.get("/directory/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == ISSUER
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["end_session_endpoint"] == f"{ISSUER}/logout"

    first = (await client.get("/directory/jwks")).json()["keys"]
    assert len(first) == 1 and first[0]["alg"] == "RS256" and "d" not in first[0]
    new_kid = await services.directory.keys.rotate()
    rotated = {key["kid"] for key in (await client.get("/directory/jwks")).json()["keys"]}
    assert rotated == {first[0]["kid"], new_kid}
    assert (await services.directory.keys.active()).kid == new_kid

    assert await services.directory.keys.retire_inactive() == [first[0]["kid"]]
    retired = {key["kid"] for key in (await client.get("/directory/jwks")).json()["keys"]}
    assert retired == {new_kid}


async def test_authorize_refuses_malformed_requests(client: httpx.AsyncClient) -> None:
    _, challenge = pkce()
    cases = {
        "redirect_uri": {"redirect_uri": "https://evil.example/cb"},
        "client_id": {"client_id": "someone"},
        "PKCE": {"code_challenge_method": "plain"},
        "openid": {"scope": "profile"},
    }
    for words, overrides in cases.items():
        response = await client.get(authorize_url(challenge, **overrides))
        assert response.status_code == 400, words
        assert response.json()["error"]["code"] == "BAD_REQUEST"
        assert words in response.json()["error"]["message"]


async def test_login_page_is_escaped_and_locked_down(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account("alice", password=PASSWORD)
    _, challenge = pkce()
    page = await client.get(authorize_url(challenge))
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    action, sealed = login_form(page)

    hostile = '"><script>alert(1)</script>'
    answer = await client.post(
        action, data={"request": sealed, "username": hostile, "password": "x"}
    )
    assert answer.status_code == 401
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;" in answer.text and "Wrong username or password." in answer.text

    forged = await client.post(
        action, data={"request": sealed[:-3] + "abc", "username": "alice", "password": PASSWORD}
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "BAD_REQUEST"


async def test_code_is_single_use_and_replay_revokes_its_tokens(
    client: httpx.AsyncClient, services: Services, make_account: MakeAccount
) -> None:
    await make_account("alice", password=PASSWORD)
    verifier, challenge = pkce()
    code = await get_code(client, challenge, "alice")

    first = await redeem(client, services, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    claims = jwt.decode(
        tokens["id_token"], KeySet.import_key_set((await client.get("/directory/jwks")).json())
    ).claims
    assert claims["iss"] == ISSUER and claims["aud"] == "botserver" and claims["nonce"] == "nonce-1"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    userinfo = await client.get("/directory/userinfo", headers=bearer)
    assert userinfo.json()["preferred_username"] == "alice"

    replayed = await redeem(client, services, code, verifier)
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    revoked = await client.get("/directory/userinfo", headers=bearer)
    assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"


async def test_token_endpoint_checks_client_pkce_and_expiry(
    client: httpx.AsyncClient, services: Services, make_account: MakeAccount, clock: FrozenClock
) -> None:
    await make_account("alice", password=PASSWORD)
    verifier, challenge = pkce()

    code = await get_code(client, challenge, "alice")
    wrong_client = await client.post(
        f"{ISSUER}/token",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        auth=("botserver", "not-the-secret"),
    )
    assert wrong_client.status_code == 401 and wrong_client.json()["error"] == "invalid_client"

    wrong_verifier = await redeem(client, services, code, pkce()[0])
    assert (
        wrong_verifier.status_code == 400 and "PKCE" in wrong_verifier.json()["error_description"]
    )

    late = await get_code(client, challenge, "alice")
    clock.advance(minutes=3)
    expired = await redeem(client, services, late, verifier)
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]


async def attempt(client: httpx.AsyncClient, password: str) -> httpx.Response:
    _, challenge = pkce()
    return await submit_login(client, authorize_url(challenge), "alice", password)


@pytest.mark.parametrize("settings_overrides", [{"login_lockout_minutes": 15.0}])
async def test_failed_passwords_slow_down_then_lock_the_account(
    client: httpx.AsyncClient,
    services: Services,
    make_account: MakeAccount,
    clock: FrozenClock,
    settings_overrides: dict[str, Any],
) -> None:
    await make_account("alice", password=PASSWORD)

    for _ in range(3):
        assert (await attempt(client, "wrong")).status_code == 401
    # The third failure started a one-second pause: even the right password waits.
    throttled = await attempt(client, PASSWORD)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "1"
    assert "Wait 1 seconds" in throttled.text

    clock.advance(seconds=1)
    assert (await attempt(client, "wrong")).status_code == 401
    clock.advance(seconds=2)
    locked = await attempt(client, "wrong")
    assert locked.status_code == 403
    assert "This account is locked" in locked.text and "15 minutes" in locked.text

    clock.advance(minutes=14)
    still_locked = await attempt(client, PASSWORD)
    assert still_locked.status_code == 403 and "locked" in still_locked.text

    clock.advance(minutes=1, seconds=1)
    assert (await attempt(client, PASSWORD)).status_code == 303
    kinds = await audit_kinds(services)
    assert kinds.count("login_failed") == 7
    assert kinds.count("account_locked") == 1
    assert kinds[-1] == "login_succeeded"


_ALERT = re.compile(r'<p class="notice error" role="alert">([^<]*)</p>')


async def answers_to_failed_logins(
    client: httpx.AsyncClient, clock: FrozenClock, username: str
) -> list[tuple[int, str, str | None]]:
    """Status, message and Retry-After of each answer while failures pile up into a lock."""
    answers = []
    for wait in (0, 0, 0, 0, 1, 2, 60 * 14):
        clock.advance(seconds=wait)
        _, challenge = pkce()
        page = await submit_login(client, authorize_url(challenge), username, "wrong")
        alert = _ALERT.search(page.text)
        assert alert, page.text
        answers.append((page.status_code, alert.group(1), page.headers.get("retry-after")))
    return answers


@pytest.mark.parametrize("settings_overrides", [{"login_lockout_minutes": 15.0}])
async def test_unknown_usernames_answer_like_real_accounts(
    client: httpx.AsyncClient,
    services: Services,
    make_account: MakeAccount,
    clock: FrozenClock,
    settings_overrides: dict[str, Any],
) -> None:
    await make_account("alice", password=PASSWORD)

    real = await answers_to_failed_logins(client, clock, "alice")
    unknown = await answers_to_failed_logins(client, clock, "mallory")

    assert unknown == real
    assert [status for status, _, _ in real] == [401, 401, 401, 429, 401, 403, 403]
    assert "This account is locked" in real[-1][1]
    async with services.db.unit() as uow:
        events, _ = await uow.audit.page(100, 0)
    guesses = [event for event in events if (event.details or {}).get("username") == "mallory"]
    assert len(guesses) == len(unknown) + 1  # every attempt, and the lock
    assert all(event.user_id is None for event in guesses)


async def test_a_username_with_nul_is_refused_without_counting_anything(
    client: httpx.AsyncClient, services: Services, make_account: MakeAccount
) -> None:
    await make_account("alice", password=PASSWORD)
    _, challenge = pkce()
    answer = await submit_login(client, authorize_url(challenge), "alice\x00", PASSWORD)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [field["field"] for field in error["details"]["fields"]] == ["username"]
    assert "login_failed" not in await audit_kinds(services)
    # The query of the authorize request is checked the same way.
    page = await client.get(authorize_url(challenge, state="s\x00"))
    assert page.status_code == 422
    assert page.json()["error"]["details"]["fields"][0]["field"] == "query.state"


async def test_concurrent_first_failures_for_an_unknown_username_both_count(
    client: httpx.AsyncClient,
) -> None:
    names = [f"ghost{n}" for n in range(5)]

    async def guess(username: str) -> httpx.Response:
        _, challenge = pkce()
        return await submit_login(client, authorize_url(challenge), username, "wrong")

    # Two attempts at once for each name: both used to try to create its counter.
    answers = await asyncio.gather(*(guess(name) for name in names for _ in range(2)))
    assert [answer.status_code for answer in answers] == [401] * len(answers)
    for answer in answers:
        alert = _ALERT.search(answer.text)
        assert alert and alert.group(1) == "Wrong username or password."
    # Both counted: the third failure starts the pause that refuses the fourth.
    for name in names:
        assert (await guess(name)).status_code == 401
        assert (await guess(name)).status_code == 429


async def guess_at_once(
    client: httpx.AsyncClient, username: str, count: int
) -> list[tuple[int, str]]:
    """Post `count` wrong passwords together; status and message of each answer, sorted."""
    forms = []
    for _ in range(count):
        _, challenge = pkce()
        page = await client.get(authorize_url(challenge))
        forms.append(login_form(page))
    answers = await asyncio.gather(
        *(
            client.post(action, data={"request": sealed, "username": username, "password": "x"})
            for action, sealed in forms
        )
    )
    found = []
    for answer in answers:
        alert = _ALERT.search(answer.text)
        assert alert, answer.text
        found.append((answer.status_code, alert.group(1)))
    return sorted(found)


@pytest.mark.parametrize(
    "settings_overrides", [{"login_slowdown_after": 10, "login_lockout_after": 5}]
)
@pytest.mark.parametrize("username", ["alice", "mallory"])
async def test_parallel_wrong_passwords_lock_after_the_allowed_number(
    client: httpx.AsyncClient,
    services: Services,
    make_account: MakeAccount,
    settings_overrides: dict[str, Any],
    username: str,
) -> None:
    await make_account("alice", password=PASSWORD)

    answers = await guess_at_once(client, username, 8)

    # Four ordinary refusals, the fifth locks, the rest find the lock.
    assert [status for status, _ in answers] == [401] * 4 + [403] * 4
    assert all("This account is locked" in message for _, message in answers[4:])
    _, challenge = pkce()
    after = await submit_login(client, authorize_url(challenge), username, PASSWORD)
    assert after.status_code == 403 and "This account is locked" in after.text
    kinds = await audit_kinds(services)
    assert kinds.count("login_failed") == 9  # every attempt, refused or not
    assert kinds.count("account_locked") == 1


@pytest.mark.parametrize("username", ["alice", "mallory"])
async def test_parallel_wrong_passwords_meet_the_pause(
    client: httpx.AsyncClient, make_account: MakeAccount, username: str
) -> None:
    await make_account("alice", password=PASSWORD)

    answers = await guess_at_once(client, username, 8)

    # The third failure starts a pause; guesses sent alongside it wait like later ones.
    assert [status for status, _ in answers] == [401] * 3 + [429] * 5
