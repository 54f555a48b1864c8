"""The OpenAPI document, completed with the errors every route shares.

Routes declare the errors their own code raises. Three come from the layers
around them, so they are added here instead of on every route: 422 (FastAPI
would describe it with its own `HTTPValidationError`, but the server answers
the envelope), 429 on every route the rate limiter counts, and 500, which any
route can answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
RATE_LIMIT_HEADERS = {
    "Retry-After": "Seconds to wait before the budget allows another request.",
    "X-RateLimit-Limit": "Requests allowed in the current window.",
    "X-RateLimit-Remaining": "Requests left in the current window.",
    "X-RateLimit-Reset": "Unix time at which the window resets.",
}


def install_openapi(app: FastAPI, counted: Callable[[str], bool]) -> None:
    """Make `app.openapi()` document the shared errors; `counted(path)` says who gets 429."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(generate(), counted)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(spec: dict[str, Any], counted: Callable[[str], bool]) -> dict[str, Any]:
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses = operation["responses"]
            if _is_fastapi_validation(responses.get("422")):
                responses["422"] = {"description": "Validation Error", "content": ENVELOPE}
            if counted(path):
                responses.setdefault("429", _rate_limited())
            responses.setdefault(
                "500", {"description": "Internal Server Error", "content": ENVELOPE}
            )
            operation["responses"] = dict(sorted(responses.items()))

    schemas = spec.get("components", {}).get("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return spec


def _is_fastapi_validation(response: dict[str, Any] | None) -> bool:
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def _rate_limited() -> dict[str, Any]:
    return {
        "description": "Too Many Requests: the caller's rate-limit budget is spent",
        "headers": {
            name: {"description": text, "schema": {"type": "integer"}}
            for name, text in RATE_LIMIT_HEADERS.items()
        },
        "content": ENVELOPE,
    }
