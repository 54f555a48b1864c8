"""One error model and the one place that turns it into the contract's envelope.

Every failure leaves the server as::

    {"error": {"code": "NOT_FOUND", "message": "...", "details": {}}}

Handlers raise `ApiError` (or let FastAPI raise its own exceptions); the
handlers installed by `install_error_handlers` map all of them here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    SERVER_ERROR = "SERVER_ERROR"
    BAD_REQUEST = "BAD_REQUEST"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    CONFLICT = "CONFLICT"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    SESSION_ENDED = "SESSION_ENDED"


_STATUS_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    410: ErrorCode.SESSION_ENDED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


class ApiError(Exception):
    """An answer the client caused or must be told about, in envelope form."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        status: int,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def envelope(self) -> dict[str, Any]:
        return envelope(self.code, self.message, self.details)

    # The common cases, so handlers read as sentences.
    @classmethod
    def unauthorized(cls, message: str = "Authentication is required.") -> ApiError:
        return cls(ErrorCode.UNAUTHORIZED, message, 401)

    @classmethod
    def forbidden(cls, message: str = "You may not do this.") -> ApiError:
        return cls(ErrorCode.FORBIDDEN, message, 403)

    @classmethod
    def not_found(cls, what: str = "Resource") -> ApiError:
        return cls(ErrorCode.NOT_FOUND, f"{what} not found.", 404)

    @classmethod
    def bad_request(cls, message: str, **details: Any) -> ApiError:
        return cls(ErrorCode.BAD_REQUEST, message, 400, details)

    @classmethod
    def conflict(cls, message: str, **details: Any) -> ApiError:
        return cls(ErrorCode.CONFLICT, message, 409, details)

    @classmethod
    def unavailable(cls, message: str = "A required service is unavailable.") -> ApiError:
        return cls(ErrorCode.SERVICE_UNAVAILABLE, message, 503, headers={"Retry-After": "1"})


def envelope(code: ErrorCode | str, message: str, details: Mapping[str, Any] | None = None) -> dict:
    return {"error": {"code": str(code), "message": message, "details": dict(details or {})}}


def error_response(
    code: ErrorCode | str,
    message: str,
    status: int,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(code, message, details), status_code=status, headers=headers)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(BaseModel):
    """The contract's error shape; used to document error answers in OpenAPI."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given error statuses."""
    return {
        status: {"model": ErrorEnvelope, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        logger.warning(
            "Answered %s %s with %s: %s", request.method, request.url.path, exc.status, exc.message
        )
    return error_response(exc.code, exc.message, exc.status, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    if exc.status_code == 404:
        message = "No such endpoint." if exc.detail == "Not Found" else str(exc.detail)
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed here."
    else:
        message = str(exc.detail)
    return error_response(code, message, exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return error_response(ErrorCode.BAD_REQUEST, "The request body is not valid JSON.", 400)
    fields = [
        {
            "field": ".".join(str(part) for part in err.get("loc", ()) if part != "body"),
            "message": err.get("msg", "Invalid value."),
            "type": err.get("type", "value_error"),
        }
        for err in errors
    ]
    return error_response(
        ErrorCode.VALIDATION_ERROR, "The request is not valid.", 422, {"fields": fields}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
