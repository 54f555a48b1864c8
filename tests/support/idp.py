"""Run the test OpenID Connect provider in ``tests/idp`` as a child process.

The provider is the ``oidc-provider`` npm package wrapped by ``tests/idp/server.mjs``. Its login
page is a plain HTML form, so tests can complete the authorization-code flow with httpx alone.

Accounts (login / password):

* ``alice`` / ``alice-password``: ``roles: ["admin"]``, Zitadel-style
  ``urn:zitadel:iam:org:project:roles: {"admin": {"orgid": "example.org"}}``
* ``bob`` / ``bob-password``: ``roles: ["user"]``, Zitadel-style ``{"user": {...}}``
* ``carol`` / ``carol-password``: ``roles: ["support", "editor"]``, Zitadel-style
  ``{"support": {...}, "editor": {...}}``
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from .services import LOOPBACK, find_free_port

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
READY_MARKER = "IDP READY"

ACCOUNTS: dict[str, dict[str, object]] = {
    "alice": {
        "password": "alice-password",
        "email": "alice@example.org",
        "given_name": "Alice",
        "family_name": "Admin",
        "preferred_username": "alice",
        "roles": ["admin"],
        "urn:zitadel:iam:org:project:roles": {"admin": {"orgid": "example.org"}},
    },
    "bob": {
        "password": "bob-password",
        "email": "bob@example.org",
        "given_name": "Bob",
        "family_name": "User",
        "preferred_username": "bob",
        "roles": ["user"],
        "urn:zitadel:iam:org:project:roles": {"user": {"orgid": "example.org"}},
    },
    "carol": {
        "password": "carol-password",
        "email": "carol@example.org",
        "given_name": "Carol",
        "family_name": "Support",
        "preferred_username": "carol",
        "roles": ["support", "editor"],
        "urn:zitadel:iam:org:project:roles": {
            "support": {"orgid": "example.org"},
            "editor": {"orgid": "example.org"},
        },
    },
}

_LIVE: set[OidcProviderProcess] = set()


@atexit.register
def _stop_live_providers() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop()


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} not found; run scripts/system-deps.sh")
    return found


def _pinned_version() -> str:
    manifest = json.loads((IDP_DIR / "package.json").read_text())
    return str(manifest["dependencies"]["oidc-provider"])


def _installed_version() -> str | None:
    manifest = IDP_DIR / "node_modules" / "oidc-provider" / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    digest = hashlib.sha256(str(IDP_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"botserver-idp-npm-{digest}.lock"
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_node_modules(timeout: float = 300.0) -> None:
    """Install the provider's npm dependencies from the lock file unless already present."""
    if _installed_version() == _pinned_version():
        return
    npm = _require("npm")
    with _install_lock():
        if _installed_version() == _pinned_version():
            return
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=IDP_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0 or _installed_version() != _pinned_version():
            raise RuntimeError(
                f"npm ci in {IDP_DIR} failed (exit {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )


class OidcProviderProcess:
    """An OIDC provider on 127.0.0.1 with one confidential client.

    ``redirect_uris`` must list the exact callback URLs the application under test uses.
    ``id_token_ttl`` shortens ID token lifetime (seconds) for expiry tests.
    """

    def __init__(
        self,
        *,
        redirect_uris: Sequence[str],
        post_logout_redirect_uris: Sequence[str] = (),
        client_id: str = "botserver-test",
        client_secret: str = "botserver-test-secret",
        port: int | None = None,
        id_token_ttl: int | None = None,
        startup_timeout: float = 30.0,
    ):
        if not redirect_uris:
            raise ValueError("redirect_uris must not be empty")
        self.redirect_uris = list(redirect_uris)
        self.post_logout_redirect_uris = list(post_logout_redirect_uris)
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = port if port is not None else find_free_port()
        self.id_token_ttl = id_token_ttl
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=500)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def output(self) -> str:
        """Everything the node process printed so far (last 500 lines)."""
        return "".join(self._output)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            IDP_PORT=str(self.port),
            IDP_ISSUER=self.issuer,
            IDP_CLIENT_ID=self.client_id,
            IDP_CLIENT_SECRET=self.client_secret,
            IDP_REDIRECT_URIS=",".join(self.redirect_uris),
            IDP_POST_LOGOUT_REDIRECT_URIS=",".join(self.post_logout_redirect_uris),
        )
        if self.id_token_ttl is not None:
            env["IDP_TTL_IDTOKEN"] = str(self.id_token_ttl)
        else:
            env.pop("IDP_TTL_IDTOKEN", None)
        return env

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._output.append(line)
            if line.startswith(READY_MARKER):
                self._ready.set()

    def start(self) -> None:
        """Install dependencies if needed, start node and wait for ``IDP READY``."""
        if self.running:
            return
        node = _require("node")
        ensure_node_modules()
        self._ready.clear()
        self._output.clear()
        proc = subprocess.Popen(
            [node, "server.mjs"],
            cwd=IDP_DIR,
            env=self._environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._proc = proc
        _LIVE.add(self)
        self._reader = threading.Thread(
            target=self._drain, args=(proc,), name="oidc-provider-output", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                reason = (
                    f"exited with code {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not print {READY_MARKER!r} within {self.startup_timeout:.0f}s"
                )
                self.stop()
                if self._reader is not None:
                    self._reader.join(timeout=2)
                raise RuntimeError(f"test OIDC provider {reason}; output:\n{self.output}")

    def stop(self, timeout: float = 5.0) -> None:
        proc = self._proc
        _LIVE.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=2)
        self._proc = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- driving the login page without a browser -------------------------------------

    def _is_provider_url(self, url: httpx.URL) -> bool:
        return url.scheme == "http" and url.host == LOOPBACK and url.port == self.port

    def _next_request(
        self,
        current: httpx.URL,
        response: httpx.Response,
        submitted: bool,
        username: str,
        password: str,
    ) -> tuple[str, httpx.URL, dict[str, str] | None, bool]:
        if response.is_redirect:
            return "GET", current.join(response.headers["location"]), None, submitted
        match = _LOGIN_FORM.search(response.text) if response.status_code == 200 else None
        if match is not None and not submitted:
            data = {"login": username, "password": password}
            return "POST", current.join(html.unescape(match.group(1))), data, True
        raise LoginFlowError(response.status_code, str(current), response.text)

    def login(
        self, client: httpx.Client, url: str | httpx.URL, *, username: str, password: str
    ) -> httpx.URL:
        """Follow ``url`` (an authorization request, possibly via the app) through the login
        form and automatic consent; return the first URL outside the provider, normally the
        client's redirect_uri carrying ``code`` and ``state``. Cookies stay in ``client``.
        """
        current = httpx.URL(url)
        method, data, submitted = "GET", None, False
        for _ in range(_MAX_HOPS):
            response = client.request(method, current, data=data, follow_redirects=False)
            if response.is_redirect and self._is_provider_url(current):
                target = current.join(response.headers["location"])
                if not self._is_provider_url(target):
                    return target
            method, current, data, submitted = self._next_request(
                current, response, submitted, username, password
            )
        raise LoginFlowError(0, str(current), "too many redirects")

    async def alogin(
        self, client: httpx.AsyncClient, url: str | httpx.URL, *, username: str, password: str
    ) -> httpx.URL:
        """``login()`` for an ``httpx.AsyncClient``."""
        current = httpx.URL(url)
        method, data, submitted = "GET", None, False
        for _ in range(_MAX_HOPS):
            response = await client.request(method, current, data=data, follow_redirects=False)
            if response.is_redirect and self._is_provider_url(current):
                target = current.join(response.headers["location"])
                if not self._is_provider_url(target):
                    return target
            method, current, data, submitted = self._next_request(
                current, response, submitted, username, password
            )
        raise LoginFlowError(0, str(current), "too many redirects")


class LoginFlowError(RuntimeError):
    """The provider answered something other than a redirect or the login form."""

    def __init__(self, status_code: int, url: str, body: str):
        self.status_code = status_code
        self.url = url
        self.body = body
        super().__init__(f"unexpected response {status_code} from {url}:\n{body[:2000]}")


_MAX_HOPS = 25
_LOGIN_FORM = re.compile(r'<form method="post" action="([^"]+/login)"')
