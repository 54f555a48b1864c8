"""Message round trips through /ws against a bare `websockets` echo server.

N concurrent sessions each send M messages and wait for the bot's answer
before sending the next. The baseline is an echo server written with the
`websockets` library alone, driven by the same client code, in a process
of its own like botserver. The ratio says how much of the socket layer's
speed botserver's pipeline (auth, storage of both messages with their seq,
dialog turn, bus) keeps.

Environment: BENCH_SESSIONS (default 20), BENCH_MESSAGES (default 50),
BENCH_DATABASE_URL (default a fresh SQLite file).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from bench.common import (
    Result,
    botserver,
    botserver_env,
    free_port,
    measure_clients,
    start_server,
    summarise,
    wait_for_port,
)

SESSIONS = int(os.environ.get("BENCH_SESSIONS", "20"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "50"))

ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()

asyncio.run(main())
"""


async def drive(
    url: str,
    headers: dict[str, str],
    frames: list[str],
    latencies: list[float],
    reply_type: str | None,
) -> None:
    async with connect(url, additional_headers=headers) as ws:
        for frame in frames:
            started = time.perf_counter()
            await ws.send(frame)
            while True:
                answer = json.loads(await ws.recv())
                if reply_type is None or answer.get("type") == reply_type:
                    break
            latencies.append(time.perf_counter() - started)


async def run_echo() -> Result:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)])
    try:
        wait_for_port(port)
        latencies: list[float] = []
        frames = [
            json.dumps({"type": "message", "session_id": "s", "content": f"m{n}"})
            for n in range(MESSAGES)
        ]
        seconds, cpu = await measure_clients(
            [drive(f"ws://127.0.0.1:{port}", {}, frames, latencies, None) for _ in range(SESSIONS)],
            [process.pid],
        )
        return Result("websockets echo (baseline)", SESSIONS * MESSAGES, seconds, latencies, cpu)
    finally:
        process.terminate()
        process.wait()


async def run_botserver(name: str, database_url: str | None = None) -> Result:
    with tempfile.TemporaryDirectory() as workdir:
        cwd = Path(workdir)
        env = botserver_env(database_url or f"sqlite+aiosqlite:///{cwd / 'bench.db'}")
        botserver(["users", "create", "bench"], env, cwd)
        token = botserver(["tokens", "issue", "bench"], env, cwd)
        headers = {"Authorization": f"Bearer {token}"}
        port = free_port()
        process = start_server(port, env, cwd)
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                bots = (await http.get("/api/bots")).json()["bots"]
                echo = next(b["id"] for b in bots if b["name"] == "echo")
                sessions = [
                    (await http.post("/api/session/create", json={"bot_id": echo})).json()[
                        "session_id"
                    ]
                    for _ in range(SESSIONS)
                ]
            latencies: list[float] = []
            clients = [
                drive(
                    f"ws://127.0.0.1:{port}/ws",
                    headers,
                    [
                        json.dumps({"type": "message", "session_id": sid, "content": f"m{n}"})
                        for n in range(MESSAGES)
                    ],
                    latencies,
                    "message",
                )
                for sid in sessions
            ]
            seconds, cpu = await measure_clients(clients, [process.pid])
            return Result(name, SESSIONS * MESSAGES, seconds, latencies, cpu)
        finally:
            process.terminate()
            process.wait()


async def main() -> None:
    print(f"WebSocket round trips: {SESSIONS} sessions x {MESSAGES} messages each")
    baseline = await run_echo()
    results = [baseline, await run_botserver("botserver /ws (SQLite)")]
    database_url = os.environ.get("BENCH_DATABASE_URL")
    if database_url:
        results.append(await run_botserver("botserver /ws (PostgreSQL)", database_url))
    summarise(results, baseline)


if __name__ == "__main__":
    asyncio.run(main())
