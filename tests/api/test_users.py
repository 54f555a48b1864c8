"""GET and PUT /api/users/me, in the embedded directory and through SCIM."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from botserver.services.container import Services
from tests.conftest import MakeAccount
from tests.support.scim import add_user, get_user, scim_server
from tests.support.signin import cheap_password_hashing  # noqa: F401 - autouse fixture

SCIM_TOKEN = "scim-test-token"


@pytest.fixture(scope="module")
def scim_url() -> Iterator[str]:
    with scim_server(SCIM_TOKEN) as url:
        yield url


@pytest.fixture
def settings_overrides(scim_url: str) -> dict[str, Any]:
    return {"scim_url": scim_url, "scim_token": SCIM_TOKEN}


async def test_me_describes_the_caller(client: httpx.AsyncClient, admin: Any) -> None:
    response = await client.get("/api/users/me", headers=admin.headers)

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "user_id": admin.user_id,
        "username": "root",
        "email": "root@example.com",
        "created_at": "2026-01-01T00:00:00Z",
        "first_name": None,
        "last_name": None,
        "roles": ["admin"],
    }


async def test_update_writes_the_embedded_directory(
    client: httpx.AsyncClient, make_account: MakeAccount, services: Services
) -> None:
    account = await make_account("dora")

    response = await client.put(
        "/api/users/me",
        headers=account.headers,
        json={"email": "dora@example.net", "first_name": " Dora ", "last_name": "Explorer"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "dora@example.net"
    assert response.json()["first_name"] == "Dora"
    again = (await client.get("/api/users/me", headers=account.headers)).json()
    assert (again["first_name"], again["last_name"]) == ("Dora", "Explorer")
    partial = await client.put("/api/users/me", headers=account.headers, json={"last_name": None})
    assert partial.json()["last_name"] is None and partial.json()["first_name"] == "Dora"
    stored = await services.users.get_by_username("dora")
    assert stored.email == "dora@example.net" and stored.last_name is None


async def test_update_validates_its_input(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account("erin")
    cases = [
        ({"email": "not-an-email"}, "email"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"last_name": ""}, "last_name"),
        ({"username": "mallory"}, "username"),
        ({"roles": ["admin"]}, "roles"),
    ]

    for body, field in cases:
        response = await client.put("/api/users/me", headers=account.headers, json=body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert [f["field"] for f in error["details"]["fields"]] == [field]

    after = (await client.get("/api/users/me", headers=account.headers)).json()
    assert after["username"] == "erin" and after["roles"] == ["user"]


async def test_update_goes_through_scim_for_external_users(
    client: httpx.AsyncClient, make_account: MakeAccount, services: Services, scim_url: str
) -> None:
    # One SCIM server serves both database runs: a fresh name each time.
    name = f"frank{secrets.token_hex(3)}"
    remote = add_user(
        scim_url,
        SCIM_TOKEN,
        {
            "userName": name,
            "name": {"givenName": "Old", "familyName": "Name"},
            "emails": [{"value": "old@example.org", "primary": True}],
        },
    )
    account = await make_account(name)
    async with services.db.unit() as uow:
        user = await uow.users.get(account.user_id)
        assert user is not None
        user.issuer, user.subject = "https://id.example.org", "frank-subject"

    response = await client.put(
        "/api/users/me",
        headers=account.headers,
        json={"email": "frank@example.org", "first_name": "Frank"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["email"] == "frank@example.org"
    assert response.json()["first_name"] == "Frank"
    stored = get_user(scim_url, SCIM_TOKEN, remote["id"])
    assert stored["name"]["givenName"] == "Frank"
    assert stored["name"]["familyName"] == "Name"
    assert stored["emails"][0]["value"] == "frank@example.org"


async def test_scim_user_is_found_by_the_issuers_subject(
    client: httpx.AsyncClient, make_account: MakeAccount, services: Services, scim_url: str
) -> None:
    # Zitadel's SCIM id is the OIDC subject; its userName need not be our username.
    suffix = secrets.token_hex(3)
    remote = add_user(
        scim_url,
        SCIM_TOKEN,
        {"userName": f"heidi.{suffix}@example.org", "name": {"givenName": "Old"}},
    )
    account = await make_account(f"heidi{suffix}")
    async with services.db.unit() as uow:
        user = await uow.users.get(account.user_id)
        assert user is not None
        user.issuer, user.subject = "https://id.example.org", remote["id"]

    response = await client.put(
        "/api/users/me", headers=account.headers, json={"first_name": "Heidi"}
    )

    assert response.status_code == 200, response.text
    assert get_user(scim_url, SCIM_TOKEN, remote["id"])["name"]["givenName"] == "Heidi"


async def test_scim_refusal_leaves_the_local_copy_alone(
    client: httpx.AsyncClient, make_account: MakeAccount, services: Services
) -> None:
    account = await make_account("grace")
    async with services.db.unit() as uow:
        user = await uow.users.get(account.user_id)
        assert user is not None
        user.issuer, user.subject = "https://id.example.org", "grace-subject"

    # The SCIM server has no user "grace".
    response = await client.put(
        "/api/users/me", headers=account.headers, json={"first_name": "Grace"}
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    me = (await client.get("/api/users/me", headers=account.headers)).json()
    assert me["first_name"] is None
