from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_lib
from fastapi import FastAPI

from botserver.app import create_app
from botserver.clock import FrozenClock
from botserver.config import ConfigError, Settings
from botserver.metrics import Metrics
from botserver.services.container import Services
from botserver.services.ratelimit import RateLimiter, Tier
from tests.conftest import Account, MakeAccount
from tests.support.services import RedisServer

LIMITS = {
    "rate_limit_public": "3/hour",
    "rate_limit_authenticated": "5/hour",
    "rate_limit_admin": "7/hour",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(LIMITS)


def window_end(clock: FrozenClock) -> int:
    now = int(clock.timestamp())
    return now - now % 3600 + 3600


def budget(response: httpx.Response) -> tuple[int, int, int]:
    headers = response.headers
    return (
        int(headers["X-RateLimit-Limit"]),
        int(headers["X-RateLimit-Remaining"]),
        int(headers["X-RateLimit-Reset"]),
    )


async def test_public_tier_counts_per_address_and_refuses_when_spent(
    client: httpx.AsyncClient, clock: FrozenClock, services: Services
) -> None:
    reset = window_end(clock)
    # Errors count and carry the headers like any other answer.
    first = await client.get("/api/groups/list")
    assert first.status_code == 401
    assert budget(first) == (3, 2, reset)
    missing = await client.get("/no/such/endpoint")
    assert missing.status_code == 404
    assert budget(missing) == (3, 1, reset)
    invalid = await client.post("/api/groups/create", content=b"{not json")
    assert budget(invalid) == (3, 0, reset)

    refused = await client.get("/api/groups/list", headers={"Origin": "http://elsewhere.test"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert refused.headers["Retry-After"] == "3600"
    assert budget(refused) == (3, 0, reset)
    # A browser on another origin can read the refusal.
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Request-Id" in refused.headers

    clock.advance(minutes=59, seconds=30)
    again = await client.get("/api/groups/list")
    assert again.status_code == 429
    assert again.headers["Retry-After"] == "30"

    # The next window starts with a full budget, without anyone sleeping.
    clock.advance(seconds=30)
    fresh = await client.get("/api/groups/list")
    assert fresh.status_code == 401
    assert budget(fresh) == (3, 2, reset + 3600)

    refused_count = services.metrics.rate_limited.labels(tier="public")._value.get()
    assert refused_count == 2


async def test_health_is_exempt(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        response = await client.get("/health")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


async def test_signed_in_users_spend_their_own_budget(
    client: httpx.AsyncClient, make_account: MakeAccount, admin: Account, clock: FrozenClock
) -> None:
    alice = await make_account("alice")
    bob = await make_account("bob")

    for remaining in (4, 3, 2, 1, 0):
        response = await client.get("/api/groups/list", headers=alice.headers)
        assert response.status_code == 200
        assert budget(response) == (5, remaining, window_end(clock))
    refused = await client.get("/api/groups/list", headers=alice.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"

    # Bob, the anonymous public and the admin are untouched by Alice's spending.
    assert budget(await client.get("/api/groups/list", headers=bob.headers))[:2] == (5, 4)
    assert budget(await client.get("/api/groups/list"))[:2] == (3, 2)
    admin_answer = await client.get("/api/groups/list", headers=admin.headers)
    assert admin_answer.status_code == 200
    assert budget(admin_answer)[:2] == (7, 6)


async def test_the_admin_tier_refuses_when_spent(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    admin: Account,
    clock: FrozenClock,
    services: Services,
) -> None:
    reset = window_end(clock)
    for remaining in range(6, -1, -1):
        response = await client.get("/api/admin/users", headers=admin.headers)
        assert response.status_code == 200
        assert budget(response) == (7, remaining, reset)

    clock.advance(minutes=20)
    refused = await client.get("/api/admin/users", headers=admin.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert refused.headers["Retry-After"] == "2400"
    assert budget(refused) == (7, 0, reset)
    # The whole API is refused to the admin, not only the admin endpoints.
    assert (await client.get("/api/groups/list", headers=admin.headers)).status_code == 429

    # Other users keep their own budgets.
    alice = await make_account("alice")
    assert (await client.get("/api/groups/list", headers=alice.headers)).status_code == 200
    assert services.metrics.rate_limited.labels(tier="admin")._value.get() == 2


async def test_an_invalid_token_counts_as_public(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    response = await client.get(
        "/api/groups/list", headers={"Authorization": "Bearer bst_not-a-real-token"}
    )
    assert response.status_code == 401
    assert budget(response)[:2] == (3, 2)


async def test_a_session_cookie_counts_against_its_user(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    carol = await make_account("carol")
    cookie = {"Cookie": f"botserver_session={carol.token}"}
    response = await client.get("/api/groups/list", headers=cookie)
    assert response.status_code == 200
    assert budget(response)[:2] == (5, 4)


async def test_the_caller_is_looked_up_once_per_request(
    client: httpx.AsyncClient, services: Services, make_account: MakeAccount, monkeypatch
) -> None:
    erin = await make_account("erin")
    calls = []
    original = services.login_sessions.authenticate

    async def counting(token: str, *, via: str = "bearer") -> Any:
        calls.append(via)
        return await original(token, via=via)

    monkeypatch.setattr(services.login_sessions, "authenticate", counting)
    response = await client.get("/api/groups/list", headers=erin.headers)
    assert response.status_code == 200
    assert calls == ["bearer"]


async def test_a_crash_still_carries_the_headers(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/api/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "SERVER_ERROR"
    assert budget(response)[:2] == (3, 2)


async def test_hit_principal_is_the_socket_entry_point(
    services: Services, make_account: MakeAccount
) -> None:
    dave = await make_account("dave")
    principal = await services.login_sessions.authenticate(dave.token)
    decisions = [await services.rate_limiter.hit_principal(principal) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[-1].tier is Tier.AUTHENTICATED
    assert decisions[-1].retry_after > 0
    anonymous = await services.rate_limiter.hit_principal(None, "192.0.2.1")
    assert (anonymous.tier, anonymous.limit, anonymous.remaining) == (Tier.PUBLIC, 3, 2)


class TestTrustedProxies:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {**LIMITS, "trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"]}

    async def test_forwarded_addresses_get_their_own_budgets(
        self, client: httpx.AsyncClient
    ) -> None:
        # httpx's ASGI transport connects from 127.0.0.1, a trusted proxy here.
        one = {"X-Forwarded-For": "203.0.113.5"}
        two = {"X-Forwarded-For": "203.0.113.6, 10.1.2.3"}
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}
        assert budget(await client.get("/api/x", headers=one))[1] == 2
        assert budget(await client.get("/api/x", headers=two))[1] == 2
        # A client-written hop left of the proxy's does not buy a new budget.
        assert budget(await client.get("/api/x", headers=spoofed))[1] == 1


async def test_forwarded_for_is_ignored_from_untrusted_peers(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/x", headers={"X-Forwarded-For": "203.0.113.5"})
    second = await client.get("/api/x", headers={"X-Forwarded-For": "203.0.113.6"})
    assert (budget(first)[1], budget(second)[1]) == (2, 1)


@asynccontextmanager
async def running(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_two_instances_share_one_budget_through_redis(
    settings: Settings, redis_server: RedisServer, clock: FrozenClock
) -> None:
    url = redis_server.url_for(secrets.randbelow(15) + 1)
    async with redis_lib.from_url(url) as connection:
        await connection.flushdb()
    shared = settings.model_copy(update={"redis_url": url})

    async with running(shared, clock) as first, running(shared, clock) as second:
        assert budget(await first.get("/api/x"))[1] == 2
        assert budget(await second.get("/api/x"))[1] == 1
        assert budget(await first.get("/api/x"))[1] == 0
        refused = await second.get("/api/x")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0


async def test_requests_pass_while_redis_is_down(
    settings: Settings, redis_server: RedisServer, clock: FrozenClock
) -> None:
    shared = settings.model_copy(update={"redis_url": redis_server.url_for(0)})
    async with running(shared, clock) as client:
        redis_server.stop()
        try:
            for _ in range(5):
                response = await client.get("/api/x")
                assert response.status_code == 404
        finally:
            redis_server.start()
        assert budget(await client.get("/api/x"))[0] == 3


@pytest.mark.parametrize("value", ["lots", "1/second;5/minute", ""])
def test_a_tier_is_one_limit(value: str) -> None:
    settings = Settings(_env_file=None, rate_limit_public=value)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="RATE_LIMIT_PUBLIC"):
        RateLimiter(settings, FrozenClock(), Metrics())
