from __future__ import annotations

from typing import Any

import httpx
import pytest

from botserver.app import create_app
from botserver.config import Settings

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "Content-Type, Authorization",
}


def client_for(settings: Settings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def make_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, database_url="sqlite+aiosqlite://", **values)  # type: ignore[call-arg]


async def test_development_preflight_allows_any_origin() -> None:
    async with client_for(make_settings()) as client:
        response = await client.options(
            "/api/session/create", headers={"Origin": "http://elsewhere.example", **PREFLIGHT}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        methods = response.headers["access-control-allow-methods"]
        assert {m.strip() for m in methods.split(",")} >= {
            "GET",
            "POST",
            "PUT",
            "DELETE",
            "OPTIONS",
        }
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed


@pytest.mark.parametrize("env", ["development", "production"])
async def test_explicit_origins_allow_listed_and_refuse_others(env: str) -> None:
    settings = make_settings(
        env=env,
        cors_origins="https://app.example,https://admin.example",
        secret_key="s" * 40,
    )
    async with client_for(settings) as client:
        ok = await client.options(
            "/health", headers={"Origin": "https://admin.example", **PREFLIGHT}
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://admin.example"
        assert ok.headers["access-control-allow-credentials"] == "true"

        refused = await client.options(
            "/health", headers={"Origin": "https://evil.example", **PREFLIGHT}
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["x-request-id"]
        error = refused.json()["error"]
        assert error["code"] == "BAD_REQUEST"
        assert "origin https://evil.example is not allowed" in error["message"]
        assert error["details"] == {"refused": ["origin"]}

        simple = await client.get("/health", headers={"Origin": "https://app.example"})
        exposed = simple.headers["access-control-expose-headers"].lower()
        assert "x-ratelimit-remaining" in exposed and "x-request-id" in exposed


@pytest.mark.parametrize("origins", ["*", "https://app.example"])
async def test_a_preflight_asking_for_a_header_we_do_not_accept_is_refused_with_the_envelope(
    origins: str,
) -> None:
    async with client_for(make_settings(cors_origins=origins)) as client:
        refused = await client.options(
            "/api/session/create",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type, X-Evil",
            },
        )
    assert refused.status_code == 400
    assert refused.headers["x-request-id"]
    error = refused.json()["error"]
    assert error["code"] == "BAD_REQUEST"
    assert error["message"] == (
        "Cross-origin request refused: these request headers are not allowed: X-Evil."
    )
    assert error["details"] == {"refused": ["headers"]}
