from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from botserver.app import create_app
from botserver.clock import FrozenClock
from botserver.config import Settings
from botserver.services.container import Services
from botserver.services.monitoring import quantile, system_status
from tests.api.test_ws import open_session
from tests.conftest import Account, MakeAccount
from tests.support.services import PostgresServer, RedisServer

TEST_BOTS = Path(__file__).parent / "bots"
ADMIN_ENDPOINTS = [
    ("GET", "/api/admin/system/status"),
    ("GET", "/api/admin/system/metrics"),
    ("GET", "/api/admin/users"),
    ("PUT", "/api/admin/users/user-x/role"),
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/bots"),
    ("POST", "/api/admin/bots/reload"),
]


async def test_admin_endpoints_refuse_others(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    user = await make_account()
    for method, path in ADMIN_ENDPOINTS:
        body = {"role": "admin"} if method == "PUT" else None
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
        forbidden = await client.request(method, path, json=body, headers=user.headers)
        assert forbidden.status_code == 403, path
        assert forbidden.json()["error"]["code"] == "FORBIDDEN"


async def test_status_is_healthy_with_every_check(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.get("/api/admin/system/status", headers=admin.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["uptime_seconds"] >= 0
    assert set(body["checks"]) == {"database", "directory", "bots"}
    for check in body["checks"].values():
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0
    assert body["checks"]["directory"]["mode"] == "embedded"
    assert body["checks"]["bots"]["total"] > 0 and body["checks"]["bots"]["offline"] == []
    assert "message" not in body["checks"]["database"]  # only a failing check explains itself


async def test_status_is_degraded_while_redis_is_down(
    settings: Settings, redis_server: RedisServer, admin: Account, clock: FrozenClock
) -> None:
    with_redis = settings.model_copy(update={"redis_url": redis_server.url_for(0)})
    app = create_app(with_redis, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            healthy = await client.get("/api/admin/system/status", headers=admin.headers)
            assert healthy.json()["checks"]["redis"]["status"] == "ok"
            redis_server.stop()
            try:
                degraded = await client.get("/api/admin/system/status", headers=admin.headers)
            finally:
                redis_server.start()
    assert degraded.status_code == 200
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["checks"]["redis"]["status"] == "error"
    assert degraded.json()["checks"]["database"]["status"] == "ok"


async def test_status_reports_a_stopped_database(tmp_path: Path) -> None:
    server = PostgresServer()
    server.start()
    try:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=server.create_database("status"),
            bots_dir=tmp_path,
            secret_key=secrets.token_hex(32),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            assert (await system_status(services))["status"] == "healthy"
            server.stop()
            report = await system_status(services)
            assert report["status"] == "degraded"
            assert report["checks"]["database"]["status"] == "error"
            # Over HTTP the admin cannot even be authenticated without the database.
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get(
                    "/api/admin/system/status", headers={"Authorization": "Bearer bst_x"}
                )
            assert response.status_code == 503
    finally:
        server.destroy()


async def test_metrics_follow_traffic_in_both_formats(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for _ in range(3):
        await client.get("/api/groups/list", headers=admin.headers)
    await client.get("/api/groups/group-x/members", headers=admin.headers)
    await client.get("/nowhere")

    body = (await client.get("/api/admin/system/metrics", headers=admin.headers)).json()
    counts = {(r["route"], r["method"], r["status"]): r["count"] for r in body["requests"]}
    assert counts[("/api/groups/list", "GET", 200)] == 3
    assert counts[("/api/groups/{group_id}/members", "GET", 404)] == 1
    assert counts[("unmatched", "GET", 404)] == 1
    latency = body["latency"]["/api/groups/list"]
    assert latency["count"] == 3
    assert 0 <= latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"]
    assert body["open_sockets"] == 0
    assert body["messages"] == {"in": 0, "out": 0}
    assert body["rate_limited"] == {"public": 0, "authenticated": 0, "admin": 0}

    again = (await client.get("/api/admin/system/metrics", headers=admin.headers)).json()
    assert again["requests_total"] > body["requests_total"]

    for params, headers in (
        ({"format": "prometheus"}, {}),
        ({}, {"Accept": "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}),
    ):
        response = await client.get(
            "/api/admin/system/metrics", params=params, headers={**admin.headers, **headers}
        )
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        samples = families["botserver_http_requests"].samples
        listed = [
            s
            for s in samples
            if s.name.endswith("_total") and s.labels["route"] == "/api/groups/list"
        ]
        assert listed[0].value == 3
        assert "botserver_http_request_seconds" in families
        assert "botserver_rate_limited" in families


def test_quantiles_interpolate_inside_buckets() -> None:
    buckets = [(0.1, 50.0), (0.2, 90.0), (0.5, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.15)
    assert quantile(0.99, buckets) == pytest.approx(0.47)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None
    assert quantile(0.9, [(0.1, 1.0), (float("inf"), 10.0)]) == pytest.approx(0.1)


async def test_users_are_listed_with_roles(
    client: httpx.AsyncClient, admin: Account, make_account: MakeAccount, clock: FrozenClock
) -> None:
    for name in ("u1", "u2"):
        clock.advance(seconds=1)
        await make_account(name)
    first = (await client.get("/api/admin/users?limit=2", headers=admin.headers)).json()
    # The first-start "admin" and root, then u1 and u2.
    assert first["total"] == 4
    assert {(u["username"], tuple(u["roles"])) for u in first["users"]} == {
        ("admin", ("admin",)),
        ("root", ("admin",)),
    }
    body = (await client.get("/api/admin/users?limit=2&offset=2", headers=admin.headers)).json()
    assert [(u["username"], u["roles"]) for u in body["users"]] == [
        ("u1", ["user"]),
        ("u2", ["user"]),
    ]
    assert set(body["users"][0]) == {
        "user_id",
        "username",
        "email",
        "first_name",
        "last_name",
        "roles",
        "created_at",
    }


async def test_role_changes_are_audited_and_keep_one_admin(
    client: httpx.AsyncClient, admin: Account, make_account: MakeAccount, services: Services
) -> None:
    user = await make_account("promoted")
    url = f"/api/admin/users/{user.user_id}/role"
    promoted = await client.put(url, json={"role": "admin"}, headers=admin.headers)
    assert promoted.status_code == 200
    assert promoted.json()["roles"] == ["admin"]
    # The new role applies at once: the promoted user reaches admin endpoints.
    assert (await client.get("/api/admin/users", headers=user.headers)).status_code == 200

    assert (await client.put(url, json={"role": "root"}, headers=admin.headers)).status_code == 422
    missing = await client.put(
        "/api/admin/users/user-nope/role", json={"role": "user"}, headers=admin.headers
    )
    assert missing.status_code == 404

    audit = await client.get(
        "/api/admin/audit", params={"kind": "role_changed"}, headers=admin.headers
    )
    (event,) = audit.json()["events"]
    assert (event["user_id"], event["actor_id"]) == (user.user_id, admin.user_id)
    assert event["details"] == {"from": ["user"], "to": ["admin"]}

    # Demote every admin but one; the last one keeps the role.
    everyone = (await client.get("/api/admin/users", headers=admin.headers)).json()["users"]
    admins = [
        u["user_id"] for u in everyone if "admin" in u["roles"] and u["user_id"] != admin.user_id
    ]
    for user_id in admins:
        demoted = await client.put(
            f"/api/admin/users/{user_id}/role", json={"role": "user"}, headers=admin.headers
        )
        assert demoted.status_code == 200
    last = await client.put(
        f"/api/admin/users/{admin.user_id}/role", json={"role": "user"}, headers=admin.headers
    )
    assert last.status_code == 409


async def test_audit_log_filters(
    client: httpx.AsyncClient, admin: Account, make_account: MakeAccount, clock: FrozenClock
) -> None:
    early = await make_account("early")
    await client.put(
        f"/api/admin/users/{early.user_id}/role", json={"role": "admin"}, headers=admin.headers
    )
    clock.advance(hours=1)
    await client.post("/api/groups/create", json={"name": "later"}, headers=admin.headers)

    everything = (await client.get("/api/admin/audit", headers=admin.headers)).json()
    assert [e["kind"] for e in everything["events"]] == ["group_created", "role_changed"]
    assert everything["total"] == 2

    by_user = await client.get(
        "/api/admin/audit", params={"user_id": early.user_id}, headers=admin.headers
    )
    assert [e["kind"] for e in by_user.json()["events"]] == ["role_changed"]
    since = await client.get(
        "/api/admin/audit", params={"since": "2026-01-01T00:30:00Z"}, headers=admin.headers
    )
    assert [e["kind"] for e in since.json()["events"]] == ["group_created"]
    paged = await client.get("/api/admin/audit?limit=1&offset=1", headers=admin.headers)
    assert [e["kind"] for e in paged.json()["events"]] == ["role_changed"]
    bad = await client.get("/api/admin/audit?since=yesterday", headers=admin.headers)
    assert bad.status_code == 422


async def test_deleted_sessions_are_audited_with_who_deleted_them(
    client: httpx.AsyncClient, admin: Account, make_account: MakeAccount, clock: FrozenClock
) -> None:
    owner = await make_account("owner")
    own, other = [await open_session(client, owner, "default") for _ in range(2)]
    assert (await client.delete(f"/api/session/{own}", headers=owner.headers)).status_code == 200
    clock.advance(minutes=1)
    assert (await client.delete(f"/api/session/{other}", headers=admin.headers)).status_code == 200

    audit = await client.get(
        "/api/admin/audit", params={"kind": "session_deleted"}, headers=admin.headers
    )
    assert audit.json()["total"] == 2
    by_admin, by_owner = audit.json()["events"]  # newest first
    assert all(event["kind"] == "session_deleted" for event in (by_admin, by_owner))
    assert (by_owner["user_id"], by_owner["actor_id"]) == (owner.user_id, owner.user_id)
    assert by_owner["details"] == {"session_id": own}
    assert (by_admin["user_id"], by_admin["actor_id"]) == (owner.user_id, admin.user_id)
    assert by_admin["details"] == {"session_id": other}


class TestBots:
    @pytest.fixture
    def settings_overrides(self, tmp_path: Path) -> dict[str, Any]:
        folder = tmp_path / "bots"
        folder.mkdir()
        for name in ("echo", "staff"):
            shutil.copytree(TEST_BOTS / f"{name}.gbai", folder / f"{name}.gbai")
        return {"bots_dir": folder}

    async def test_list_and_reload(
        self, client: httpx.AsyncClient, admin: Account, settings: Settings
    ) -> None:
        listed = (await client.get("/api/admin/bots", headers=admin.headers)).json()["bots"]
        assert {(b["name"], b["status"]) for b in listed} == {
            ("echo", "online"),
            ("staff", "online"),
        }
        staff = next(b for b in listed if b["name"] == "staff")
        assert (staff["public"], staff["groups"], staff["error"]) == (False, ["staff"], None)
        assert "config" not in staff

        shutil.copytree(TEST_BOTS / "broken.gbai", settings.bots_dir / "broken.gbai")
        reloaded = await client.post("/api/admin/bots/reload", headers=admin.headers)
        assert reloaded.status_code == 200
        broken = next(b for b in reloaded.json()["bots"] if b["name"] == "broken")
        assert broken["status"] == "offline"
        assert broken["error"]

        status = (await client.get("/api/admin/system/status", headers=admin.headers)).json()
        assert status["status"] == "degraded"
        assert status["checks"]["bots"]["status"] == "degraded"
        assert status["checks"]["bots"]["offline"] == ["broken"]

        audit = await client.get(
            "/api/admin/audit", params={"kind": "bots_reloaded"}, headers=admin.headers
        )
        (event,) = audit.json()["events"]
        assert event["details"] == {"online": ["echo", "staff"], "offline": ["broken"]}

    async def test_group_membership_unlocks_restricted_bots(
        self, client: httpx.AsyncClient, admin: Account, make_account: MakeAccount
    ) -> None:
        user = await make_account()

        async def visible() -> set[str]:
            response = await client.get("/api/bots", headers=user.headers)
            return {bot["name"] for bot in response.json()["bots"]}

        assert await visible() == {"echo"}
        group = await client.post(
            "/api/groups/create", json={"name": "staff"}, headers=admin.headers
        )
        await client.post(
            f"/api/groups/{group.json()['id']}/members/add",
            json={"user_id": user.user_id},
            headers=admin.headers,
        )
        assert await visible() == {"echo", "staff"}


@pytest.fixture
def behind_a_proxy(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["trusted_proxies"] = ["127.0.0.1"]  # the test client's address


async def test_audit_entries_name_the_clients_address(
    behind_a_proxy: None, client: httpx.AsyncClient, admin: Account, make_account: MakeAccount
) -> None:
    user = await make_account("watched")
    url = f"/api/admin/users/{user.user_id}/role"
    forwarded = {**admin.headers, "X-Forwarded-For": "203.0.113.9"}
    assert (await client.put(url, json={"role": "admin"}, headers=forwarded)).status_code == 200
    assert (await client.put(url, json={"role": "user"}, headers=admin.headers)).status_code == 200

    audit = await client.get(
        "/api/admin/audit", params={"kind": "role_changed"}, headers=admin.headers
    )
    demoted, promoted = audit.json()["events"]
    assert promoted["ip"] == "203.0.113.9"  # from the trusted proxy's header
    assert demoted["ip"] == "127.0.0.1"  # the peer itself
