"""Idle sockets are pinged, and a peer that stops answering is dropped."""

from __future__ import annotations

import asyncio
import base64
import os

from fastapi import FastAPI

from tests.conftest import Account, MakeAccount, start_live_server


def open_sockets(app: FastAPI) -> float:
    gauge = app.state.services.metrics.open_sockets
    return float(gauge._value.get())


async def test_a_dead_peer_is_dropped_after_an_unanswered_ping(
    app: FastAPI, make_account: MakeAccount
) -> None:
    account: Account = await make_account("sleepy")
    server, task, port = await start_live_server(app, ws_ping_interval=0.3, ws_ping_timeout=0.3)
    try:
        # A client that completes the handshake and then never reads again,
        # so it never answers the server's pings: a dead peer.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /ws HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {account.token}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await reader.readline()
        assert b"101" in status
        for _ in range(100):
            if open_sockets(app) == 1:
                break
            await asyncio.sleep(0.02)
        assert open_sockets(app) == 1

        for _ in range(300):
            if open_sockets(app) == 0:
                break
            await asyncio.sleep(0.02)
        assert open_sockets(app) == 0
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
