"""/openapi.json and /docs describe every endpoint with its models and its errors."""

from __future__ import annotations

import httpx

# Endpoints whose success is a redirect or a page rather than JSON.
NON_JSON = {("get", "/auth/login"), ("get", "/auth/callback"), ("get", "/")}


async def test_every_operation_documents_its_answer_and_its_errors(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "ErrorEnvelope" in schemas
    problems = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
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
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]
                if not any(v.get("schema") for v in body.values()):
                    problems.append(f"{where}: request body has no schema")
    assert problems == []


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.text
