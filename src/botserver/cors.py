"""CORS that refuses a preflight with the error envelope, like every other failure."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from botserver.errors import ErrorCode, error_response

_PREFIX = "Disallowed CORS "


class EnvelopeCORSMiddleware(CORSMiddleware):
    """Starlette's CORS rules; only the answer to a refused preflight changes.

    A browser shows none of a refused preflight's body to the page, but
    developers read it in the network tab and scripts parse it, so it says
    which part of the request was refused, in the envelope.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer

        # Starlette names the refused parts as "Disallowed CORS origin, headers".
        text = bytes(answer.body).decode()
        refused = text.removeprefix(_PREFIX).split(", ") if text.startswith(_PREFIX) else []
        reasons = [self._reason(part, request_headers) for part in refused]
        headers = {
            name: value
            for name, value in answer.headers.items()
            if name not in ("content-type", "content-length")
        }
        return error_response(
            ErrorCode.BAD_REQUEST,
            "Cross-origin request refused: " + ("; ".join(reasons) or "not allowed") + ".",
            400,
            {"refused": refused},
            headers,
        )

    def _reason(self, part: str, request_headers: Headers) -> str:
        if part == "origin":
            return f"origin {request_headers['origin']} is not allowed"
        if part == "method":
            return f"method {request_headers['access-control-request-method']} is not allowed"
        if part == "headers":
            asked = request_headers.get("access-control-request-headers", "").split(",")
            names = [
                name.strip() for name in asked if name.strip().lower() not in self.allow_headers
            ]
            return f"these request headers are not allowed: {', '.join(names)}"
        return f"{part} access is not allowed"
