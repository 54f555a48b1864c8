"""Self-tests for the throwaway PostgreSQL, Redis and OIDC provider helpers."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import redis.exceptions
from joserfc import jwt
from joserfc.jwk import KeySet

from .idp import ACCOUNTS, LoginFlowError, OidcProviderProcess
from .services import (
    PG_MISSING,
    PostgresServer,
    RedisServer,
    find_free_port,
    find_postgres_bin_dir,
    find_redis_server,
    port_is_open,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
ZITADEL_ROLES = "urn:zitadel:iam:org:project:roles"


def require(available: bool, reason: str) -> None:
    """Skip locally when a tool is missing; under CI=true a missing tool is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, refusing to skip)")
    pytest.skip(reason)


def have_postgres() -> bool:
    try:
        find_postgres_bin_dir()
    except RuntimeError:
        return False
    return True


def have_redis() -> bool:
    try:
        find_redis_server()
    except RuntimeError:
        return False
    return True


# --------------------------------------------------------------------------- ports


def test_find_free_port_is_bindable_on_loopback() -> None:
    port = find_free_port()
    assert 1024 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
    assert not port_is_open(port)


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_reports_missing_binaries(tmp_path: Path) -> None:
    server = PostgresServer(bin_dir=tmp_path)
    with pytest.raises(RuntimeError, match=re.escape("run scripts/system-deps.sh")) as info:
        server.start()
    assert str(info.value) == PG_MISSING
    assert server.base_dir is None


@pytest.mark.postgres
async def test_postgres_lifecycle() -> None:
    require(have_postgres(), PG_MISSING)
    with PostgresServer() as pg:
        assert pg.url == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/postgres"
        assert pg.running
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            assert await conn.fetchval("SHOW fsync") == "off"
            assert await conn.fetchval("SHOW max_connections") == "200"
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            assert await conn.fetchval("SHOW server_encoding") == "UTF8"
        finally:
            await conn.close()

        url = pg.create_database("module_db")
        assert url.endswith(f":{pg.port}/module_db")
        conn = await asyncpg.connect(pg.dsn_for("module_db"))
        try:
            await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            await conn.execute("INSERT INTO kept VALUES (1, 'survives a restart')")
        finally:
            await conn.close()

        port, data_dir = pg.port, pg.data_dir
        pg.stop()
        assert not pg.running
        assert not port_is_open(port)
        with pytest.raises(OSError):
            await asyncpg.connect(pg.dsn_for("module_db"), timeout=5)

        pg.start()
        assert (pg.port, pg.data_dir) == (port, data_dir)
        conn = await asyncpg.connect(pg.dsn_for("module_db"))
        try:
            assert await conn.fetchval("SELECT note FROM kept WHERE id = 1") == "survives a restart"
        finally:
            await conn.close()

        pg.drop_database("module_db")
        with pytest.raises(asyncpg.InvalidCatalogNameError):
            await asyncpg.connect(pg.dsn_for("module_db"))
        with pytest.raises(ValueError):
            pg.create_database("bad; name")
        base_dir = pg.base_dir
    assert base_dir is not None and not base_dir.exists()
    assert not port_is_open(port)


# --------------------------------------------------------------------------- Redis


@pytest.mark.redis
async def test_redis_lifecycle() -> None:
    require(have_redis(), "redis-server not found; run scripts/system-deps.sh")
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = aioredis.from_url(server.url, socket_timeout=5)
        try:
            assert await client.ping() is True
            await client.set("greeting", "hello")
            assert await client.get("greeting") == b"hello"

            port = server.port
            server.stop()
            assert not server.running
            with pytest.raises(redis.exceptions.ConnectionError):
                await client.ping()

            server.start()
            assert server.port == port
            assert await client.get("greeting") == b"hello"
        finally:
            await client.aclose()
        base_dir = server.base_dir
    assert base_dir is not None and not base_dir.exists()
    assert not port_is_open(port)


# --------------------------------------------------------------------------- OIDC provider

REDIRECT_PORT = find_free_port()
REDIRECT_URI = f"http://127.0.0.1:{REDIRECT_PORT}/auth/callback"
POST_LOGOUT_URI = f"http://127.0.0.1:{REDIRECT_PORT}/signed-out"


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProviderProcess]:
    require(
        shutil.which("node") is not None and shutil.which("npm") is not None,
        "node/npm not found; run scripts/system-deps.sh",
    )
    with OidcProviderProcess(
        redirect_uris=[REDIRECT_URI], post_logout_redirect_uris=[POST_LOGOUT_URI]
    ) as provider:
        yield provider


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(idp: OidcProviderProcess, state: str, nonce: str, challenge: str) -> str:
    query = urlencode(
        {
            "client_id": idp.client_id,
            "response_type": "code",
            "scope": "openid profile email",
            "redirect_uri": REDIRECT_URI,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{idp.issuer}/auth?{query}"


def verify_id_token(http: httpx.Client, discovery: dict[str, object], token: str) -> jwt.Token:
    keys = KeySet.import_key_set(http.get(str(discovery["jwks_uri"])).json())
    return jwt.decode(token, keys, algorithms=["RS256"])


@pytest.mark.node
def test_idp_discovery(idp: OidcProviderProcess) -> None:
    with httpx.Client(timeout=10) as http:
        response = http.get(idp.discovery_url)
    assert response.status_code == 200
    discovery = response.json()
    assert discovery["issuer"] == idp.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["response_types_supported"] == ["code"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        discovery["token_endpoint_auth_methods_supported"]
    )
    assert {"openid", "profile", "email"} <= set(discovery["scopes_supported"])
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    assert discovery["end_session_endpoint"] == f"{idp.issuer}/session/end"


@pytest.mark.node
def test_idp_code_flow_step_by_step(idp: OidcProviderProcess) -> None:
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    with httpx.Client(timeout=10, follow_redirects=False) as http:
        discovery = http.get(idp.discovery_url).json()

        response = http.get(authorize_url(idp, state, nonce, challenge))
        assert response.status_code == 303
        interaction_url = httpx.URL(idp.issuer).join(response.headers["location"])
        assert interaction_url.path.startswith("/interaction/")

        page = http.get(interaction_url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text
        match = re.search(r'<form method="post" action="([^"]+)">', page.text)
        assert match is not None
        action = interaction_url.join(match.group(1))
        assert action.path == f"{interaction_url.path}/login"
        assert 'name="login"' in page.text and 'name="password"' in page.text

        wrong = http.post(action, data={"login": "alice", "password": "nope"})
        assert wrong.status_code == 401
        assert "Invalid username or password." in wrong.text
        assert 'name="password"' in wrong.text

        response = http.post(action, data={"login": "alice", "password": "alice-password"})
        callback = None
        for _ in range(10):
            assert response.status_code in (302, 303), response.text
            location = httpx.URL(idp.issuer).join(response.headers["location"])
            if str(location).startswith(REDIRECT_URI):
                callback = location
                break
            response = http.get(location)
        assert callback is not None
        params = parse_qs(callback.query.decode())
        assert params["state"] == [state]
        assert params["iss"] == [idp.issuer]
        code = params["code"][0]

        token_response = http.post(
            str(discovery["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(idp.client_id, idp.client_secret),
        )
        assert token_response.status_code == 200, token_response.text
        tokens = token_response.json()
        assert tokens["token_type"].lower() == "bearer"
        id_token = verify_id_token(http, discovery, tokens["id_token"])

        # The code is single use.
        replay = http.post(
            str(discovery["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(idp.client_id, idp.client_secret),
        )
        assert replay.status_code == 400

    assert id_token.header["alg"] == "RS256"
    claims = id_token.claims
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == idp.client_id
    assert claims["sub"] == "alice"
    assert claims["nonce"] == nonce
    assert claims["roles"] == ["admin"]
    assert claims[ZITADEL_ROLES] == {"admin": {"orgid": "example.org"}}
    assert claims["email"] == "alice@example.org"
    assert claims["email_verified"] is True
    assert claims["given_name"] == "Alice"
    assert claims["family_name"] == "Admin"
    assert claims["preferred_username"] == "alice"
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.node
def test_idp_login_helper_client_secret_post_userinfo_and_logout(
    idp: OidcProviderProcess,
) -> None:
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    with httpx.Client(timeout=10) as http:
        discovery = http.get(idp.discovery_url).json()
        callback = idp.login(
            http,
            authorize_url(idp, state, nonce, challenge),
            username="bob",
            password="bob-password",
        )
        params = parse_qs(callback.query.decode())
        assert str(callback).startswith(REDIRECT_URI)
        assert params["state"] == [state]

        token_response = http.post(
            str(discovery["token_endpoint"]),
            data={
                "grant_type": "authorization_code",
                "code": params["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": idp.client_id,
                "client_secret": idp.client_secret,
            },
        )
        assert token_response.status_code == 200, token_response.text
        tokens = token_response.json()
        claims = verify_id_token(http, discovery, tokens["id_token"]).claims
        assert claims["sub"] == "bob"
        assert claims["roles"] == ["user"]
        assert claims["preferred_username"] == ACCOUNTS["bob"]["preferred_username"]

        userinfo = http.get(
            str(discovery["userinfo_endpoint"]),
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert userinfo.status_code == 200, userinfo.text
        assert userinfo.json()["email"] == "bob@example.org"

        # A second authorization reuses the provider session: no login form this time.
        _, challenge2 = pkce_pair()
        again = idp.login(
            http, authorize_url(idp, "s2", "n2", challenge2), username="x", password="x"
        )
        assert "code" in parse_qs(again.query.decode())

        # RP-initiated logout: a plain confirmation form, then back to the app.
        logout_page = http.get(
            str(discovery["end_session_endpoint"]),
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": POST_LOGOUT_URI,
                "state": "bye",
            },
        )
        assert logout_page.status_code == 200
        form = re.search(
            r'<form id="op.logoutForm" method="post" action="([^"]+)">', logout_page.text
        )
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', logout_page.text)
        assert form is not None and xsrf is not None
        done = http.post(
            form.group(1),
            data={"xsrf": xsrf.group(1), "logout": "yes"},
            follow_redirects=False,
        )
        assert done.status_code in (302, 303)
        assert done.headers["location"] == f"{POST_LOGOUT_URI}?state=bye"


@pytest.mark.node
def test_idp_rejects_bad_login_and_missing_pkce(idp: OidcProviderProcess) -> None:
    _, challenge = pkce_pair()
    with httpx.Client(timeout=10) as http:
        with pytest.raises(LoginFlowError) as info:
            idp.login(
                http, authorize_url(idp, "s", "n", challenge), username="alice", password="bad"
            )
        assert info.value.status_code == 401
        assert "Invalid username or password." in info.value.body

        # Cancelling on the login page sends the user back with access_denied.
        abort = re.search(r'<form method="post" action="([^"]+/abort)">', info.value.body)
        assert abort is not None
        response = http.post(httpx.URL(info.value.url).join(abort.group(1)))
        target = response.url.join(response.headers["location"])
        while str(target).startswith(idp.issuer):
            response = http.get(target)
            target = response.url.join(response.headers["location"])
        assert str(target).startswith(REDIRECT_URI)
        denied = parse_qs(target.query.decode())
        assert denied["error"] == ["access_denied"]
        assert denied["state"] == ["s"]

        query = urlencode(
            {
                "client_id": idp.client_id,
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": REDIRECT_URI,
                "state": "no-pkce",
            }
        )
        response = http.get(f"{idp.issuer}/auth?{query}", follow_redirects=False)
        assert response.status_code in (302, 303)
        params = parse_qs(httpx.URL(response.headers["location"]).query.decode())
        assert params["error"] == ["invalid_request"]
        assert params["state"] == ["no-pkce"]


@pytest.mark.node
def test_idp_short_id_token_ttl_and_startup_failure_output() -> None:
    require(shutil.which("node") is not None, "node not found; run scripts/system-deps.sh")
    with OidcProviderProcess(redirect_uris=[REDIRECT_URI], id_token_ttl=5) as short:
        verifier, challenge = pkce_pair()
        with httpx.Client(timeout=10) as http:
            callback = short.login(
                http,
                authorize_url(short, "s", "n", challenge),
                username="alice",
                password="alice-password",
            )
            code = parse_qs(callback.query.decode())["code"][0]
            tokens = http.post(
                f"{short.issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                },
                auth=(short.client_id, short.client_secret),
            ).json()
        claims = jwt.decode(
            tokens["id_token"],
            KeySet.import_key_set(httpx.get(f"{short.issuer}/jwks", timeout=10).json()),
        ).claims
        assert claims["exp"] - claims["iat"] == 5

    # The port is taken, so node exits; the error carries its output.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        clash = OidcProviderProcess(redirect_uris=[REDIRECT_URI], port=busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="EADDRINUSE"):
            clash.start()
    assert not clash.running
