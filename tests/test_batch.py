from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account, MakeAccount


def item(id: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    request = {"id": id, "method": method, "path": path}
    if body is not None:
        request["body"] = body
    return request


async def run(client: httpx.AsyncClient, account: Account, *items: dict) -> httpx.Response:
    return await client.post("/api/batch", json={"requests": list(items)}, headers=account.headers)


async def test_successes_and_failures_come_back_in_order(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await run(
        client,
        admin,
        item("create", "POST", "/api/groups/create", {"name": "batched"}),
        item("list", "GET", "/api/groups/list?limit=5"),
        item("missing", "GET", "/api/groups/group-nope/members"),
        item("invalid", "POST", "/api/groups/create", {"name": ""}),
        item("who", "GET", "/auth/validate"),
        item("nowhere", "GET", "/api/no-such-thing"),
    )
    assert response.status_code == 200
    results = response.json()["responses"]
    assert [(r["id"], r["status"]) for r in results] == [
        ("create", 201),
        ("list", 200),
        ("missing", 404),
        ("invalid", 422),
        ("who", 200),
        ("nowhere", 404),
    ]
    assert results[0]["body"]["name"] == "batched"
    # The second item sees the first one's effect.
    assert results[1]["body"]["groups"][0]["name"] == "batched"
    assert results[2]["body"]["error"]["code"] == "NOT_FOUND"
    assert results[3]["body"]["error"]["code"] == "VALIDATION_ERROR"
    assert results[4]["body"]["user_id"] == admin.user_id


async def test_refused_items_fail_alone(client: httpx.AsyncClient, admin: Account) -> None:
    response = await run(
        client,
        admin,
        item("recursive", "POST", "/api/batch", {"requests": []}),
        item("encoded", "POST", "/api/%62atch", {"requests": []}),
        item("outside", "GET", "/health"),
        item("method", "PATCH", "/api/groups/list"),
        item("fine", "get", "/api/groups/list"),
    )
    results = response.json()["responses"]
    assert [r["status"] for r in results] == [400, 400, 400, 400, 200]
    assert {r["body"]["error"]["code"] for r in results[:4]} == {"BAD_REQUEST"}


async def test_at_most_twenty_items(client: httpx.AsyncClient, admin: Account) -> None:
    twenty = [item(str(n), "GET", "/auth/validate") for n in range(20)]
    assert len((await run(client, admin, *twenty)).json()["responses"]) == 20
    too_many = await run(client, admin, *twenty, item("21", "GET", "/auth/validate"))
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await run(client, admin)).status_code == 422
    malformed = await client.post(
        "/api/batch", json={"requests": [{"id": "x"}]}, headers=admin.headers
    )
    assert malformed.status_code == 422


async def test_each_item_is_authorised_as_its_own_request(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    user = await make_account()
    response = await run(
        client,
        user,
        item("create", "POST", "/api/groups/create", {"name": "nope"}),
        item("admin", "GET", "/api/admin/users"),
        item("mine", "GET", "/api/groups/list"),
    )
    assert [r["status"] for r in response.json()["responses"]] == [403, 403, 200]
    anonymous = await client.post(
        "/api/batch", json={"requests": [item("x", "GET", "/auth/validate")]}
    )
    assert anonymous.status_code == 401


class TestLimits:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"rate_limit_authenticated": "6/hour"}

    async def test_every_item_spends_from_the_callers_budget(
        self, client: httpx.AsyncClient, make_account: MakeAccount
    ) -> None:
        user = await make_account()
        validate = item("v", "GET", "/auth/validate")
        first = await run(client, user, validate, validate, validate)
        assert first.headers["X-RateLimit-Remaining"] == "5"  # the batch itself
        assert [r["status"] for r in first.json()["responses"]] == [200, 200, 200]

        # 4 spent; the batch is the 5th, its items the 6th, 7th and 8th.
        second = await run(client, user, validate, validate, validate)
        statuses = [r["status"] for r in second.json()["responses"]]
        assert statuses == [200, 429, 429]
        assert second.json()["responses"][1]["body"]["error"]["code"] == "RATE_LIMITED"
        assert (await run(client, user, validate)).status_code == 429
