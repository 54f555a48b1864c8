"""Round trips through two instances sharing PostgreSQL and Redis, against one instance.

N concurrent sessions each send M messages over /ws and wait for the bot's
answer before sending the next, as in `ws_roundtrip`. Three runs, each on a
fresh database of the same PostgreSQL server and the same Redis:

- one instance holds every socket (the baseline);
- two instances, the sessions' sockets spread evenly over both;
- two instances, each message sent on one instance and its reply awaited on
  a second socket of the same user on the other, so every answer crosses
  the Redis bus.

On a machine with few cores the instances, PostgreSQL, Redis and the client
compete for the same CPUs, so the ratio shows the cost of sharing state more
than the gain of a second process; on separate machines it is the other way.

Environment: BENCH_SESSIONS (default 20), BENCH_MESSAGES (default 50),
BENCH_POSTGRES_URL (a server URL ending in /postgres; default a throwaway
server) and BENCH_REDIS_URL (default a throwaway server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
from tests.support.services import PostgresServer, RedisServer
from websockets.asyncio.client import ClientConnection, connect

from bench.common import Result, botserver, botserver_env, free_port, measure_clients, start_server

SESSIONS = int(os.environ.get("BENCH_SESSIONS", "20"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "50"))


@contextlib.contextmanager
def shared_services() -> Iterator[tuple[str, str]]:
    """A PostgreSQL server URL (…/postgres) and a Redis URL: given, or throwaway ones."""
    given_pg, given_redis = os.environ.get("BENCH_POSTGRES_URL"), os.environ.get("BENCH_REDIS_URL")
    with contextlib.ExitStack() as stack:
        pg_url = given_pg or stack.enter_context(PostgresServer()).url
        redis_url = given_redis or stack.enter_context(RedisServer()).url
        yield pg_url, redis_url


async def fresh_database(server_url: str) -> str:
    """Create an empty database next to `server_url`'s and return its URL."""
    name = f"bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()
    return server_url.rsplit("/", 1)[0] + "/" + name


async def recv_reply(ws: ClientConnection) -> None:
    while True:
        if json.loads(await ws.recv()).get("type") == "message":
            return


async def discard(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


async def converse(
    send_url: str,
    hear_url: str | None,
    headers: dict[str, str],
    session_id: str,
    latencies: list[float],
) -> None:
    """One session's messages in turn; with `hear_url` the reply is read on another socket."""
    async with contextlib.AsyncExitStack() as stack:
        sender = await stack.enter_async_context(connect(send_url, additional_headers=headers))
        hearer = sender
        if hear_url is not None:
            hearer = await stack.enter_async_context(connect(hear_url, additional_headers=headers))
            # Follow the session on the listening socket before the clock starts.
            await hearer.send(
                json.dumps({"type": "resume", "session_id": session_id, "after_seq": 1})
            )
            await hearer.send(json.dumps({"type": "ping"}))
            while json.loads(await hearer.recv()).get("type") != "pong":
                pass
            # The sending socket hears the replies too; keep it drained.
            drain = asyncio.create_task(discard(sender))
            stack.callback(drain.cancel)
        for n in range(MESSAGES):
            started = time.perf_counter()
            await sender.send(
                json.dumps({"type": "message", "session_id": session_id, "content": f"m{n}"})
            )
            await recv_reply(hearer)
            latencies.append(time.perf_counter() - started)


async def run(name: str, server_url: str, redis_url: str, instances: int, cross: bool) -> Result:
    with tempfile.TemporaryDirectory() as workdir:
        cwd = Path(workdir)
        env = botserver_env(await fresh_database(server_url), BOTSERVER_REDIS_URL=redis_url)
        botserver(["migrate"], env, cwd)
        botserver(["users", "create", "bench"], env, cwd)
        token = botserver(["tokens", "issue", "bench"], env, cwd)
        headers = {"Authorization": f"Bearer {token}"}
        ports = [free_port() for _ in range(instances)]
        processes = [start_server(port, env, cwd) for port in ports]
        try:
            base = f"http://127.0.0.1:{ports[0]}"
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
                bots = (await http.get("/api/bots")).json()["bots"]
                echo = next(b["id"] for b in bots if b["name"] == "echo")
                sessions = [
                    (await http.post("/api/session/create", json={"bot_id": echo})).json()[
                        "session_id"
                    ]
                    for _ in range(SESSIONS)
                ]
            urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
            latencies: list[float] = []
            clients = [
                converse(
                    urls[n % instances],
                    urls[(n + 1) % instances] if cross else None,
                    headers,
                    session_id,
                    latencies,
                )
                for n, session_id in enumerate(sessions)
            ]
            seconds, cpu = await measure_clients(clients, [p.pid for p in processes])
            return Result(name, SESSIONS * MESSAGES, seconds, latencies, cpu)
        finally:
            for process in processes:
                process.terminate()
                process.wait()


async def main() -> None:
    print(
        f"Two instances on PostgreSQL + Redis: {SESSIONS} sessions x {MESSAGES} messages each "
        f"({os.cpu_count()} CPUs)"
    )
    with shared_services() as (server_url, redis_url):
        one = await run("one instance", server_url, redis_url, 1, cross=False)
        two = await run("two instances", server_url, redis_url, 2, cross=False)
        cross = await run("two, replies cross the bus", server_url, redis_url, 2, cross=True)
    for result in (one, two, cross):
        print(result.line())
    for result in (two, cross):
        ratio = result.per_second / one.per_second
        print(f"ratio {result.name} / {one.name}: {ratio:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
