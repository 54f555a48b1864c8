"""HTTP face of the embedded provider: discovery, JWKS, authorize, token, userinfo, logout.

These routes speak OAuth 2.0 / OpenID Connect, not the botserver API: the
token and userinfo endpoints answer RFC 6749 error objects, and the login
page is server-rendered HTML. They are left out of the OpenAPI document; the
discovery document describes them.
"""

from __future__ import annotations

import base64
import binascii
import html
from pathlib import Path
from string import Template
from typing import Annotated
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from botserver.api.deps import ServicesDep
from botserver.api.fields import Text
from botserver.directory.embedded.provider import LoginRefused, TokenError
from botserver.errors import ApiError
from botserver.logs import client_address_var


async def _embedded_only(services: ServicesDep) -> None:
    # With an external issuer configured the embedded provider signs no one in.
    if not services.settings.embedded_directory:
        raise ApiError.not_found("Embedded directory")


router = APIRouter(
    prefix="/directory", include_in_schema=False, dependencies=[Depends(_embedded_only)]
)

_TEMPLATE = Template((Path(__file__).parent / "templates" / "login.html").read_text())
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _login_page(
    issuer: str, sealed: str, *, username: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    body = _TEMPLATE.substitute(
        action=html.escape(urlsplit(issuer).path + "/authorize", quote=True),
        request=html.escape(sealed, quote=True),
        username=html.escape(username, quote=True),
        error=f'<p class="notice error" role="alert">{html.escape(error)}</p>' if error else "",
    )
    headers = {
        **_NO_STORE,
        "Content-Security-Policy": (
            # The chat page's stylesheet, so that the form looks like the page.
            "default-src 'none'; style-src 'self'; img-src data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(body, status_code=status, headers=headers)


@router.get("/.well-known/openid-configuration")
async def discovery(services: ServicesDep) -> JSONResponse:
    return JSONResponse(services.directory.discovery())


@router.get("/jwks")
async def jwks(services: ServicesDep) -> JSONResponse:
    return JSONResponse(await services.directory.keys.jwks())


@router.get("/authorize")
async def authorize(request: Request, services: ServicesDep) -> HTMLResponse:
    checked = services.directory.check_request(dict(request.query_params))
    return _login_page(services.directory.issuer, services.directory.seal(checked))


@router.post("/authorize")
async def login(
    request: Request,
    services: ServicesDep,
    sealed: Annotated[str, Form(alias="request")],
    username: Annotated[Text, Form(max_length=150)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    provider = services.directory
    checked = provider.unseal(sealed)
    ip = client_address_var.get()  # through trusted proxies
    try:
        user = await provider.authenticate(username, password, ip)
    except LoginRefused as refused:
        page = _login_page(
            provider.issuer, sealed, username=username, error=refused.message, status=refused.status
        )
        if refused.retry_after is not None:
            page.headers["Retry-After"] = str(refused.retry_after)
        return page
    location = await provider.issue_code(checked, user)
    return RedirectResponse(location, status_code=303, headers=_NO_STORE)


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    return form.get("client_id"), form.get("client_secret")


def _token_error(error: TokenError) -> JSONResponse:
    headers = dict(_NO_STORE)
    if error.status == 401:
        scheme = "Bearer" if error.error == "invalid_token" else "Basic"
        headers["WWW-Authenticate"] = f'{scheme} error="{error.error}"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


@router.post("/token")
async def token(request: Request, services: ServicesDep) -> JSONResponse:
    form = {key: str(value) for key, value in (await request.form()).items()}
    try:
        services.directory.authenticate_client(*_client_credentials(request, form))
        answer = await services.directory.exchange(form)
    except TokenError as error:
        return _token_error(error)
    return JSONResponse(answer, headers=_NO_STORE)


@router.api_route("/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, services: ServicesDep) -> JSONResponse:
    header = request.headers.get("authorization", "")
    access_token = header[7:] if header.lower().startswith("bearer ") else ""
    try:
        claims = await services.directory.userinfo(access_token)
    except TokenError as error:
        return _token_error(error)
    return JSONResponse(claims, headers=_NO_STORE)


@router.get("/logout")
async def end_session(
    services: ServicesDep,
    id_token_hint: str | None = None,
    post_logout_redirect_uri: str | None = None,
) -> Response:
    target = await services.directory.end_session(id_token_hint, post_logout_redirect_uri)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return HTMLResponse(
        "<!doctype html><title>Signed out</title><p>You are signed out.</p>",
        headers={"Content-Security-Policy": "default-src 'none'"},
    )
