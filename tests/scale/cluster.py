"""Real botserver processes sharing one PostgreSQL database and one Redis."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.services import find_free_port

ROOT = Path(__file__).resolve().parents[2]


def app_env(
    database_url: str, redis_url: str | None, bots_dir: Path, secret: str
) -> dict[str, str]:
    """The settings every instance of one deployment shares."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTSERVER_")}
    env.update(
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        BOTSERVER_DATABASE_URL=database_url,
        BOTSERVER_BOTS_DIR=str(bots_dir),
        BOTSERVER_SECRET_KEY=secret,
        BOTSERVER_ADMIN_PASSWORD="admin-password-for-tests",
        BOTSERVER_LOG_LEVEL="WARNING",
    )
    if redis_url:
        env["BOTSERVER_REDIS_URL"] = redis_url
    return env


def run_cli(env: dict[str, str], *args: str) -> str:
    """`python -m botserver ARGS` against the deployment's database; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "botserver", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"botserver {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Instance:
    """One `botserver serve` process on a free loopback port."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=find_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        # Behind a load balancer every instance has the deployment's public URL.
        env = {"BOTSERVER_PUBLIC_URL": self.url, **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "botserver", "serve", "--port", str(self.port)],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"instance on {self.port} exited:\n{self.log_tail()}")
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"instance on {self.port} did not become ready:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye, like a crashed machine's process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def start_instances(env: dict[str, str], logs: Path, count: int) -> list[Instance]:
    instances = [Instance(env, logs / f"instance-{n}.log") for n in range(count)]
    for instance in instances:
        instance.spawn()
    try:
        await asyncio.gather(*(instance.wait_ready() for instance in instances))
    except BaseException:
        for instance in instances:
            instance.kill()
        raise
    return instances


class Balancer:
    """A TCP load balancer on a free loopback port: each connection goes to the next backend.

    No stickiness: consecutive requests from one client (each on its own
    connection) land on different instances, as behind any round-robin proxy.
    """

    def __init__(self) -> None:
        self.port = find_free_port()
        self.backends: list[int] = []
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, backends: list[Instance]) -> None:
        self.backends = [instance.port for instance in backends]
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        port = self.backends[next(self._turn) % len(self.backends)]
        try:
            backend_reader, backend = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client.close()
            return
        self._open.update((client, backend))
        try:
            await asyncio.gather(_pipe(client_reader, backend), _pipe(backend_reader, client))
        finally:
            self._open.difference_update((client, backend))

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._open):
            writer.close()
        await self._server.wait_closed()


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            target.write(data)
            await target.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.close()


def new_secret() -> str:
    return secrets.token_urlsafe(32)
