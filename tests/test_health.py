from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx

from botserver.app import create_app
from botserver.config import Settings
from tests.support.services import PostgresServer


async def test_health_answers_as_the_contract_shows(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "timestamp"}
    assert body["status"] == "healthy"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])


async def test_health_is_503_unhealthy_while_the_database_is_down(tmp_path: Path) -> None:
    server = PostgresServer()
    try:
        server.start()
    except RuntimeError as exc:
        raise AssertionError(f"PostgreSQL is required for this test: {exc}") from exc
    try:
        url = server.create_database("health")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=url, bots_dir=tmp_path, secret_key=secrets.token_hex(32)
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/health")).status_code == 200

                server.stop()
                response = await client.get("/health")
                assert response.status_code == 503
                assert response.json()["status"] == "unhealthy"

                # It recovers by itself once the database is back.
                server.start()
                response = await client.get("/health")
                assert response.status_code == 200
                assert response.json()["status"] == "healthy"
    finally:
        server.destroy()
