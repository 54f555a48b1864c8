"""/openapi.json and /docs describe every endpoint with its models and its errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

# Endpoints whose success is a redirect or a page rather than JSON.
NON_JSON = {("get", "/auth/login"), ("get", "/auth/callback"), ("get", "/")}
ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
NOT_RATE_LIMITED = {"/health"}  # the default exemptions that are API paths
# The contract's health answer is the same shape whether healthy or not.
NOT_ENVELOPE = {("get", "/health", "503")}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, by_method in spec["paths"].items()
        for method, operation in by_method.items()
    ]


async def test_every_operation_documents_its_answer_and_its_errors(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "ErrorEnvelope" in schemas
    problems = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        if not operation.get("summary") and not operation.get("description"):
            problems.append(f"{where}: no description")
        responses = operation["responses"]
        errors = [code for code in responses if code.startswith(("4", "5"))]
        if not errors:
            problems.append(f"{where}: no error responses documented")
        if (method, path) in NON_JSON:
            continue
        success = [code for code in responses if code.startswith("2")]
        content = responses[success[0]].get("content", {}) if success else {}
        schema = content.get("application/json", {}).get("schema", {})
        if not schema or schema == {}:
            problems.append(f"{where}: success answer has no schema")
        elif not _has_fields(schema, schemas):
            problems.append(f"{where}: success answer is a free-form object")
        if "requestBody" in operation:
            body = operation["requestBody"]["content"]
            if not any(v.get("schema") for v in body.values()):
                problems.append(f"{where}: request body has no schema")
    assert problems == []


async def test_every_error_answer_is_the_envelope(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in json.dumps(spec)
    problems = []
    for method, path, operation in operations(spec):
        for code, response in operation["responses"].items():
            if not code.startswith(("4", "5")) or (method, path, code) in NOT_ENVELOPE:
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") != ENVELOPE_REF:
                problems.append(f"{method.upper()} {path} {code}: {schema}")
    assert problems == []


async def test_every_counted_operation_documents_429_and_every_operation_500(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    problems = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        if "500" not in responses:
            problems.append(f"{where}: no 500")
        if path in NOT_RATE_LIMITED:
            if "429" in responses:
                problems.append(f"{where}: exempt from rate limits, yet documents 429")
        elif "Retry-After" not in responses.get("429", {}).get("headers", {}):
            problems.append(f"{where}: no 429 with Retry-After")
    assert problems == []


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_exempt": "/health,/api/bots"}])
async def test_a_configured_exemption_is_documented_without_429(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "429" not in spec["paths"]["/api/bots"]["get"]["responses"]
    assert "429" in spec["paths"]["/api/sessions"]["get"]["responses"]


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.text


def _has_fields(schema: dict[str, Any], schemas: dict[str, Any]) -> bool:
    """Whether an answer's schema names its fields (not `{"type": "object"}` alone)."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("type") == "object":
        return bool(schema.get("properties"))
    return schema.get("type") in ("array", "string", "integer", "number", "boolean")
