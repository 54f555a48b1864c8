"""Every failure answers with the contract's envelope and a request id."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field


class Echo(BaseModel):
    name: str = Field(min_length=1)
    count: int


@pytest.fixture
async def routes(app: FastAPI) -> FastAPI:
    async def explode() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    async def echo(body: Echo) -> Echo:
        return body

    app.add_api_route("/test/explode", explode, methods=["GET"])
    app.add_api_route("/test/echo", echo, methods=["POST"])
    return app


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert response.headers["x-request-id"]
    return body["error"]


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/no/such/thing"), 404, "NOT_FOUND")


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.delete("/health"), 405, "METHOD_NOT_ALLOWED")


async def test_malformed_json_is_400_envelope(routes: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/test/echo", content=b'{"name": "x", ', headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "BAD_REQUEST")


async def test_failed_validation_lists_the_fields(
    routes: FastAPI, client: httpx.AsyncClient
) -> None:
    error = assert_envelope(
        await client.post("/test/echo", json={"name": "", "count": "many"}), 422, "VALIDATION_ERROR"
    )
    fields = {item["field"] for item in error["details"]["fields"]}
    assert fields == {"name", "count"}


async def test_body_too_large_is_413_envelope(routes: FastAPI, client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'", "count": 1}'
    response = await client.post(
        "/test/echo", content=big, headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


async def test_streamed_body_too_large_is_413_envelope(
    routes: FastAPI, client: httpx.AsyncClient
) -> None:
    async def chunks():  # no Content-Length: the limit must count what arrives
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post(
        "/test/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


async def test_uncaught_exception_is_500_without_internals(
    routes: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/test/explode")
    error = assert_envelope(response, 500, "SERVER_ERROR")
    request_id = response.headers["x-request-id"]
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert request_id in error["message"]
    # The log line carries the same id, so an operator can find it.
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(getattr(r, "request_id", None) == request_id for r in logged)


async def test_request_id_is_echoed_when_safe(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    response = await client.get("/health", headers={"X-Request-Id": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
