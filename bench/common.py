"""Shared plumbing: start processes on free ports, wait for them, and summarise latencies."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOTS = Path(__file__).resolve().parent / "bots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User plus system CPU time the processes have used so far; None without /proc.

    On a shared machine throughput moves with whatever else runs, while the
    CPU a server spends per round trip hardly does, so that is what to compare.
    """
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # Fields after the parenthesised command name: utime and stime are the 12th and 13th.
        fields = stat.rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def botserver_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "BOTSERVER_DATABASE_URL": database_url,
        "BOTSERVER_BOTS_DIR": str(BOTS),
        "BOTSERVER_LOG_LEVEL": "WARNING",
        "BOTSERVER_ADMIN_PASSWORD": "bench-admin-password",
        # A benchmark measures throughput, not the rate limiter.
        "BOTSERVER_RATE_LIMIT_AUTHENTICATED": "100000000/hour",
        "BOTSERVER_RATE_LIMIT_PUBLIC": "100000000/hour",
        "BOTSERVER_RATE_LIMIT_ADMIN": "100000000/hour",
        "BOTSERVER_WS_MAX_FRAMES_PER_SECOND": "1000000",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    env.update(extra)
    return env


def botserver(args: Sequence[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "botserver", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def start_server(port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    log = (cwd / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "botserver", "serve", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_for_port(port)
    except RuntimeError:
        process.kill()
        raise RuntimeError((cwd / f"server-{port}.log").read_text()[-3000:]) from None
    return process


@dataclass
class Result:
    name: str
    round_trips: int
    seconds: float
    latencies: list[float]
    server_cpu_seconds: float | None = None

    @property
    def per_second(self) -> float:
        return self.round_trips / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        line = (
            f"{self.name:<28} {self.per_second:>9.0f} round trips/s   "
            f"p50 {self.percentile(0.5):>7.2f} ms   p99 {self.percentile(0.99):>7.2f} ms"
        )
        if self.server_cpu_seconds is not None:
            cpu = self.server_cpu_seconds * 1000 / self.round_trips
            line += f"   server CPU {cpu:>5.2f} ms/round trip"
        return line


def summarise(results: list[Result], baseline: Result) -> None:
    for result in results:
        print(result.line())
    for result in results:
        if result is baseline:
            continue
        ratio = result.per_second / baseline.per_second
        print(
            f"ratio {result.name} / {baseline.name}: {ratio:.3f} "
            f"(p50 latency x{result.percentile(0.5) / baseline.percentile(0.5):.1f})"
        )


async def measure_clients(
    coroutines: list, server_pids: Sequence[int]
) -> tuple[float, float | None]:
    """Wall seconds the clients took, and the CPU seconds the servers spent meanwhile."""
    before = cpu_seconds(server_pids)
    seconds = await gather_clients(coroutines)
    after = cpu_seconds(server_pids)
    spent = after - before if before is not None and after is not None else None
    return seconds, spent


async def gather_clients(coroutines: list) -> float:
    started = time.perf_counter()
    await asyncio.gather(*coroutines)
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)
