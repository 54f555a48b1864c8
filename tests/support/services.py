"""Disposable PostgreSQL and Redis servers for tests.

Each server lives in its own temporary directory, listens only on 127.0.0.1 at a free port and
is torn down when the interpreter exits, so a crashed test run does not leave servers behind.
The machine's own services (if any) are never touched.

Typical use from a fixture::

    with PostgresServer() as pg:
        url = pg.create_database("test_accounts")
        ...

    with RedisServer() as redis:
        client = redis_lib.Redis.from_url(redis.url)
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"

PG_MISSING = "PostgreSQL binaries not found; run scripts/system-deps.sh"
REDIS_MISSING = "redis-server not found; run scripts/system-deps.sh"

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BIND_ERRORS = ("Address already in use", "could not bind", "could not create any TCP/IP sockets")


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, timeout: float = 0.25) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# Servers that were started and not yet destroyed; cleaned up at interpreter exit.
_LIVE: set[_ManagedServer] = set()


@atexit.register
def _destroy_live_servers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.destroy()


class _ManagedServer:
    """Context-manager and exit-cleanup plumbing shared by the servers below."""

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def destroy(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()

    def _track(self) -> None:
        _LIVE.add(self)

    def _untrack(self) -> None:
        _LIVE.discard(self)


# --------------------------------------------------------------------------- PostgreSQL


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    parts = re.findall(r"\d+", bin_dir.parent.name)
    return tuple(int(p) for p in parts) or (0,)


def find_postgres_bin_dir() -> Path:
    """Directory holding initdb and pg_ctl: newest Debian version, else whatever is on PATH."""
    candidates = [
        Path(d)
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file()
    ]
    if candidates:
        return max(candidates, key=_version_key)
    initdb = shutil.which("initdb")
    pg_ctl = shutil.which("pg_ctl")
    if initdb and pg_ctl:
        # Resolve links so pg_ctl finds the postgres binary that belongs with it.
        bin_dir = Path(pg_ctl).resolve().parent
        if (bin_dir / "initdb").is_file():
            return bin_dir
    raise RuntimeError(PG_MISSING)


def _clean_env() -> dict[str, str]:
    """The current environment without libpq variables that could redirect our commands."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def _best_locale() -> str:
    try:
        out = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "C"
    names = {line.strip().lower() for line in out.splitlines()}
    return "C.UTF-8" if {"c.utf8", "c.utf-8"} & names else "C"


class PostgresServer(_ManagedServer):
    """A private PostgreSQL cluster in a temporary directory.

    ``start()`` creates the cluster on first use and (re)starts it on the same port and data
    afterwards; ``stop()`` shuts it down keeping the data; ``destroy()`` removes everything.
    """

    user = "postgres"

    def __init__(self, port: int | None = None, bin_dir: str | os.PathLike[str] | None = None):
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._fixed_port = port is not None
        self.port: int = port if port is not None else find_free_port()
        self.base_dir: Path | None = None
        self._started_once = False
        self._running = False
        self._run_as = self._system_user_for_root()

    # -- locations ---------------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_postgres_bin_dir()
        elif not (self._bin_dir / "initdb").is_file() or not (self._bin_dir / "pg_ctl").is_file():
            raise RuntimeError(PG_MISSING)
        return self._bin_dir

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base()

    @property
    def log_path(self) -> Path:
        return self._base() / "postgres.log"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("PostgresServer has not been started")
        return self.base_dir

    # -- URLs --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.url_for("postgres")

    @property
    def dsn(self) -> str:
        """libpq/asyncpg DSN of the ``postgres`` database."""
        return self.dsn_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{database}"

    # -- running commands --------------------------------------------------------------

    @staticmethod
    def _system_user_for_root() -> str | None:
        if os.geteuid() != 0:
            return None
        return "postgres"

    def _owner_argv(self, argv: list[str]) -> list[str]:
        """Prefix argv so it runs as the postgres system user when we are root."""
        if self._run_as is None:
            return argv
        if runuser := shutil.which("runuser"):
            return [runuser, "-u", self._run_as, "--", *argv]
        if setpriv := shutil.which("setpriv"):
            return [
                setpriv,
                f"--reuid={self._run_as}",
                f"--regid={self._run_as}",
                "--init-groups",
                "--",
                *argv,
            ]
        raise RuntimeError("running as root but neither runuser nor setpriv is available")

    def _run(
        self, argv: list[str], *, as_owner: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        cmd = self._owner_argv(argv) if as_owner else argv
        return subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(),
            cwd=self.base_dir or tempfile.gettempdir(),
            check=False,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def _create_cluster(self) -> None:
        bin_dir = self.bin_dir
        if self._run_as is not None:
            try:
                owner = pwd.getpwnam(self._run_as)
            except KeyError as exc:
                raise RuntimeError(
                    f"running as root but there is no '{self._run_as}' system user; "
                    "run scripts/system-deps.sh"
                ) from exc
        base = Path(tempfile.mkdtemp(prefix="botserver-pg-"))
        self.base_dir = base
        self._track()
        if self._run_as is not None:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        result = self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                self.user,
                "--no-sync",
                "-E",
                "UTF8",
                f"--locale={_best_locale()}",
            ],
            as_owner=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": f"'{base}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_min_error_statement": "error",
            "timezone": "'UTC'",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        # Appending keeps the file's owner, also when we are root.
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\n# settings for tests\n" + conf)

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster if needed and start it; returns once it accepts connections."""
        if self._running:
            return
        if self.base_dir is None:
            self._create_cluster()
        self._track()
        attempts = 1 if (self._started_once or self._fixed_port) else 3
        for attempt in range(attempts):
            result = self._run(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-o",
                    f"-p {self.port}",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ],
                as_owner=True,
                timeout=timeout + 15,
            )
            if result.returncode == 0:
                break
            log = _tail(self.log_path)
            if attempt + 1 < attempts and any(err in log for err in _BIND_ERRORS):
                self.port = find_free_port()
                continue
            raise RuntimeError(
                f"PostgreSQL failed to start on port {self.port}:\n"
                f"{result.stdout}\n{result.stderr}\n--- log ---\n{log}"
            )
        deadline = time.monotonic() + timeout
        while not port_is_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL did not accept TCP connections on port {self.port}:\n"
                    f"{_tail(self.log_path)}"
                )
            time.sleep(0.05)
        self._running = True
        self._started_once = True

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down (``fast`` or ``immediate``); data is kept for ``start()``."""
        if self.base_dir is None or not self.data_dir.exists():
            self._running = False
            return
        if mode not in {"smart", "fast", "immediate"}:
            raise ValueError(f"unknown shutdown mode {mode!r}")
        if (self.data_dir / "postmaster.pid").exists():
            result = self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
                as_owner=True,
            )
            if result.returncode != 0 and (self.data_dir / "postmaster.pid").exists():
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    as_owner=True,
                )
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        try:
            if self.base_dir is not None:
                self.stop(mode="immediate")
                shutil.rmtree(self.base_dir, ignore_errors=True)
        finally:
            self.base_dir = None
            self._running = False
            self._started_once = False
            self._untrack()

    # -- databases ---------------------------------------------------------------------

    def _client_binary(self, name: str) -> str:
        candidate = self.bin_dir / name
        if candidate.is_file():
            return str(candidate)
        found = shutil.which(name)
        if found is None:
            raise RuntimeError(PG_MISSING)
        return found

    def _client_args(self) -> list[str]:
        return ["-h", LOOPBACK, "-p", str(self.port), "-U", self.user]

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        result = self._run([self._client_binary("createdb"), *self._client_args(), name])
        if result.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {result.stderr.strip()}")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions; missing databases are ignored."""
        if not _DB_NAME.match(name):
            raise ValueError(f"invalid database name {name!r}")
        result = self._run(
            [
                self._client_binary("dropdb"),
                *self._client_args(),
                "--if-exists",
                "--force",
                name,
            ]
        )
        if result.returncode != 0:
            raise RuntimeError(f"dropdb {name} failed: {result.stderr.strip()}")


# --------------------------------------------------------------------------- Redis


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in ("/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(REDIS_MISSING)


def _redis_command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command in RESP form and return the raw reply (may be empty)."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        data = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(payload)
        try:
            return sock.recv(4096)
        except (TimeoutError, ConnectionResetError):
            return b""


class RedisServer(_ManagedServer):
    """A private redis-server process with its working directory in a temporary directory.

    ``stop()`` saves a snapshot by default so that ``start()`` brings the data back.
    """

    def __init__(self, port: int | None = None, executable: str | None = None):
        self._executable = executable
        self._fixed_port = port is not None
        self.port: int = port if port is not None else find_free_port()
        self.base_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_once = False

    @property
    def url(self) -> str:
        return self.url_for(0)

    def url_for(self, db: int) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{db}"

    @property
    def log_path(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("RedisServer has not been started")
        return self.base_dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ping(self) -> bool:
        try:
            return _redis_command(self.port, "PING").startswith(b"+PONG")
        except OSError:
            return False

    def _spawn(self, executable: str) -> subprocess.Popen[bytes]:
        assert self.base_dir is not None
        argv = [
            executable,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_path),
            "--databases",
            "16",
        ]
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.base_dir,
        )

    def start(self, timeout: float = 15.0) -> None:
        """Start redis-server and wait until it answers PING."""
        if self.running:
            return
        executable = self._executable or find_redis_server()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="botserver-redis-"))
        self._track()
        attempts = 1 if (self._started_once or self._fixed_port) else 3
        for attempt in range(attempts):
            proc = self._spawn(executable)
            self._proc = proc
            deadline = time.monotonic() + timeout
            while True:
                if self.ping():
                    self._started_once = True
                    return
                if proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    self._kill()
                    raise RuntimeError(
                        f"redis-server did not answer PING on port {self.port} within "
                        f"{timeout:.0f}s:\n{_tail(self.log_path)}"
                    )
                time.sleep(0.02)
            log = _tail(self.log_path)
            if attempt + 1 < attempts and any(err in log for err in _BIND_ERRORS):
                self.port = find_free_port()
                continue
            raise RuntimeError(
                f"redis-server exited with code {proc.returncode} on port {self.port}:\n{log}"
            )

    def _kill(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)

    def stop(self, save: bool = True, timeout: float = 10.0) -> None:
        """Shut the server down; with ``save`` a snapshot is written so data survives."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            _redis_command(self.port, "SHUTDOWN", "SAVE" if save else "NOSAVE", timeout=timeout)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()

    def destroy(self) -> None:
        """Stop the server without saving and delete its directory."""
        try:
            self.stop(save=False)
            self._kill()
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
        finally:
            self._proc = None
            self.base_dir = None
            self._started_once = False
            self._untrack()
