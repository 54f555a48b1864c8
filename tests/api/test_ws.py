"""The WebSocket over a real server on a free port, with a real client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from botserver.api import ws as ws_module
from botserver.clock import FrozenClock
from botserver.services.login_sessions import hash_token
from tests.api.wsclient import Socket
from tests.conftest import Account, LiveServer, MakeAccount

BOTS = Path(__file__).resolve().parent.parent / "bots"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"bots_dir": BOTS}


async def bot_id(client: httpx.AsyncClient, account: Account, name: str = "echo") -> str:
    response = await client.get("/api/bots", headers=account.headers)
    return next(b["id"] for b in response.json()["bots"] if b["name"] == name)


async def open_session(client: httpx.AsyncClient, account: Account, name: str = "echo") -> str:
    response = await client.post(
        "/api/session/create",
        json={"bot_id": await bot_id(client, account, name)},
        headers=account.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


@pytest.fixture
async def alice(make_account: MakeAccount) -> Account:
    return await make_account("alice")


async def test_the_contract_example_exchange(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        # Exactly the page's example frame: type, content, session_id.
        await ws.send({"type": "message", "content": "Hello bot", "session_id": session_id})
        frames = await ws.recv_until(lambda f: f["type"] == "message")
        ack, reply = frames[0], frames[-1]
        assert ack["type"] == "ack" and ack["session_id"] == session_id
        assert reply["content"] == "You said: Hello bot"
        assert reply["suggestions"] == ["stop"]
        assert reply["session_id"] == session_id
        assert reply["is_complete"] is True
        assert reply["seq"] == ack["seq"] + 1
        assert reply["created_at"].endswith("Z")


async def test_ack_comes_before_the_reply_and_seq_has_no_gaps(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        greeting = await ws.recv()
        assert (greeting["seq"], greeting["content"]) == (1, "Hello! Say something.")
        seqs = [1]
        for n in range(5):
            await ws.send(
                {
                    "type": "message",
                    "session_id": session_id,
                    "content": f"m{n}",
                    "client_id": f"c{n}",
                }
            )
            ack = await ws.recv()
            assert ack["type"] == "ack" and ack["client_id"] == f"c{n}"
            reply = await ws.recv()
            assert reply["type"] == "message" and reply["content"] == f"You said: m{n}"
            seqs += [ack["seq"], reply["seq"]]
        assert seqs == list(range(1, 12))


async def test_resume_after_a_dropped_connection_loses_and_repeats_nothing(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    ws = await Socket.open(live_server.ws_url, alice.token)
    await ws.send({"type": "message", "session_id": session_id, "content": "one"})
    frames = await ws.recv_until(lambda f: f["type"] == "message")
    last_seen = frames[-1]["seq"]
    await ws.close()

    # While the client is away, the conversation goes on through REST.
    for word in ("two", "three"):
        response = await client.post(
            f"/api/session/{session_id}/messages", json={"content": word}, headers=alice.headers
        )
        assert response.status_code == 200

    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": last_seen})
        missed = [await ws.recv() for _ in range(4)]
        assert [f["seq"] for f in missed] == list(range(last_seen + 1, last_seen + 5))
        assert [f["content"] for f in missed] == [
            "two",
            "You said: two",
            "three",
            "You said: three",
        ]
        assert [f["sender"] for f in missed] == ["user", "bot", "user", "bot"]
        # Then live messages continue, with nothing replayed twice.
        await ws.send({"type": "message", "session_id": session_id, "content": "four"})
        ack = await ws.recv()
        reply = await ws.recv()
        assert (ack["type"], ack["seq"]) == ("ack", last_seen + 5)
        assert (reply["content"], reply["seq"]) == ("You said: four", last_seen + 6)
        await ws.expect_silence()


async def test_the_same_session_on_two_sockets_sees_every_message(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with (
        await Socket.open(live_server.ws_url, alice.token) as first,
        await Socket.open(live_server.ws_url, alice.token) as second,
    ):
        await second.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await first.send({"type": "message", "session_id": session_id, "content": "hi"})
        on_first = await first.recv_until(lambda f: f["type"] == "message")
        on_second = [await second.recv(), await second.recv()]
        assert [f["type"] for f in on_first] == ["ack", "message"]
        assert [(f["sender"], f["content"]) for f in on_second] == [
            ("user", "hi"),
            ("bot", "You said: hi"),
        ]
        assert on_second[0]["seq"] == on_first[0]["seq"]


async def test_socket_and_rest_interleaved_keep_one_order(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 1})

        async def over_socket() -> None:
            for n in range(5):
                await ws.send({"type": "message", "session_id": session_id, "content": f"ws{n}"})

        async def over_rest() -> None:
            for n in range(5):
                await client.post(
                    f"/api/session/{session_id}/messages",
                    json={"content": f"rest{n}"},
                    headers=alice.headers,
                )

        await asyncio.gather(over_socket(), over_rest())
        frames = await ws.recv_until(
            lambda f: f.get("seq") == 21 and f["type"] == "message", timeout=15
        )

    history = (
        await client.get(
            f"/api/session/{session_id}/messages?after_seq=0&limit=200", headers=alice.headers
        )
    ).json()["messages"]
    assert [m["seq"] for m in history] == list(range(1, 22))
    # Each user message is followed directly by its own echo.
    for user, bot in zip(history[1::2], history[2::2], strict=True):
        assert user["sender"] == "user" and bot["content"] == f"You said: {user['content']}"
    # The socket saw every message once, in seq order (its own as acks).
    seen = [f["seq"] for f in frames if f["type"] in ("ack", "message")]
    assert seen == list(range(2, 22))


async def test_a_resend_with_the_same_client_id_is_not_processed_twice(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        frame = {"type": "message", "session_id": session_id, "content": "once", "client_id": "k1"}
        await ws.send(frame)
        first = await ws.recv_until(lambda f: f["type"] == "message")
        await ws.send(frame)
        again = await ws.recv()
        assert again["type"] == "ack" and again["duplicate"] is True
        assert again["seq"] == first[0]["seq"]
        await ws.expect_silence()
    history = (
        await client.get(f"/api/session/{session_id}/messages", headers=alice.headers)
    ).json()["messages"]
    assert [m["content"] for m in history].count("once") == 1


OWN = "the-callers-own-session"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", "BAD_REQUEST"),
        ("[1, 2, 3]", "BAD_REQUEST"),
        (json.dumps({"type": "dance", "session_id": "x"}), "BAD_REQUEST"),
        (json.dumps({"type": "message", "content": "no session"}), "VALIDATION_ERROR"),
        (
            json.dumps({"type": "message", "session_id": "session-nope", "content": "x"}),
            "NOT_FOUND",
        ),
        (json.dumps({"type": "resume", "session_id": "s", "after_seq": "x"}), "VALIDATION_ERROR"),
        (json.dumps({"type": "resume", "session_id": "s", "after_seq": -1}), "VALIDATION_ERROR"),
        # Numbers past the seq column's range, on the caller's own session.
        (
            json.dumps({"type": "resume", "session_id": OWN, "after_seq": 10**30}),
            "VALIDATION_ERROR",
        ),
        (json.dumps({"type": "resume", "session_id": OWN, "after_seq": 2**31}), "VALIDATION_ERROR"),
        (
            json.dumps({"type": "message", "session_id": "s", "content": "x" * 70_000}),
            "PAYLOAD_TOO_LARGE",
        ),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, frame: str, code: str
) -> None:
    if OWN in frame:
        frame = frame.replace(OWN, await open_session(client, alice))
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send(frame)
        error = await ws.recv()
        assert error["type"] == "error"
        assert error["error"]["code"] == code
        assert set(error["error"]) == {"code", "message", "details"}
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"


async def test_an_unexpected_failure_answers_server_error_and_keeps_the_socket(
    live_server: LiveServer,
    client: httpx.AsyncClient,
    alice: Account,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session_id = await open_session(client, alice)

    # No known frame breaks the server any more, so one is made to: a bug in typing.
    async def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(live_server.app.state.services.conversations, "typing", broken)
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "typing", "session_id": session_id})
        error = await ws.recv()
        assert error["type"] == "error" and error["session_id"] == session_id
        assert error["error"]["code"] == "SERVER_ERROR"
        assert "secret internals" not in json.dumps(error)
        assert error["error"]["details"]["request_id"]
        # The socket still works, messages included.
        await ws.send({"type": "message", "session_id": session_id, "content": "still here"})
        frames = await ws.recv_until(lambda f: f["type"] == "message")
        assert frames[-1]["content"] == "You said: still here"
    failures = [r for r in caplog.records if r.name == "botserver.api.ws" and r.exc_info]
    assert len(failures) == 1
    assert "secret internals" in caplog.text


async def test_binary_frames_are_refused_with_an_error_frame(
    live_server: LiveServer, alice: Account
) -> None:
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.connection.send(b"\x00\x01")
        error = await ws.recv()
        assert error["error"]["code"] == "BAD_REQUEST"


async def test_another_users_session_is_not_found(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, make_account: MakeAccount
) -> None:
    session_id = await open_session(client, alice)
    mallory = await make_account("mallory")
    async with await Socket.open(live_server.ws_url, mallory.token) as ws:
        await ws.send({"type": "message", "session_id": session_id, "content": "hijack"})
        error = await ws.recv()
        assert error["error"]["code"] == "NOT_FOUND"
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        error = await ws.recv()
        assert error["error"]["code"] == "NOT_FOUND"
        await ws.expect_silence()
    # And Alice's history holds nothing Mallory sent.
    history = (
        await client.get(f"/api/session/{session_id}/messages", headers=alice.headers)
    ).json()["messages"]
    assert "hijack" not in [m["content"] for m in history]


async def test_a_message_to_an_ended_session_is_refused(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        deleted = await client.delete(f"/api/session/{session_id}", headers=alice.headers)
        assert deleted.json() == {"success": True, "message": "Session terminated"}
        ended = await ws.recv()
        assert ended["type"] == "session_ended" and ended["session_id"] == session_id
        await ws.send({"type": "message", "session_id": session_id, "content": "still there?"})
        error = await ws.recv()
        assert error["error"]["code"] == "SESSION_ENDED"


@pytest.mark.parametrize("how", ["ended", "expired"])
async def test_typing_to_an_ended_session_is_refused(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, clock: FrozenClock, how: str
) -> None:
    session_id = await open_session(client, alice)
    async with (
        await Socket.open(live_server.ws_url, alice.token) as typist,
        await Socket.open(live_server.ws_url, alice.token) as watcher,
    ):
        await watcher.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await watcher.send({"type": "ping"})
        assert (await watcher.recv())["type"] == "pong"
        if how == "ended":
            await client.delete(f"/api/session/{session_id}", headers=alice.headers)
            assert (await watcher.recv())["type"] == "session_ended"
        else:
            clock.advance(minutes=11)  # echo: 10 idle minutes
        await typist.send({"type": "typing", "session_id": session_id})
        error = await typist.recv()
        assert error["type"] == "error" and error["session_id"] == session_id
        assert error["error"]["code"] == "SESSION_ENDED"
        # Nobody is told the user is typing into a session that is over.
        with pytest.raises(TimeoutError):
            await watcher.recv(0.3, skip=())


async def test_a_flood_of_bad_frames_closes_the_socket_with_4429(
    live_server: LiveServer, alice: Account
) -> None:
    ws = await Socket.open(live_server.ws_url, alice.token)
    for _ in range(40):
        await ws.send("garbage")
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(100):
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    # The server is fine and serves the next client.
    async with await Socket.open(live_server.ws_url, alice.token) as again:
        await again.send({"type": "ping"})
        assert (await again.recv())["type"] == "pong"


@pytest.fixture
def few_frames(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["ws_max_frames_per_second"] = 20


async def test_a_flood_of_valid_pings_is_capped_and_closed_with_4429(
    few_frames: None, live_server: LiveServer, alice: Account
) -> None:
    ws = await Socket.open(live_server.ws_url, alice.token)
    for _ in range(500):
        await ws.send({"type": "ping"})
    frames: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(1000):
            frames.append(await ws.recv())
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    kinds = [f["type"] for f in frames]
    # The first second's worth is answered, then the rest is refused until the close.
    assert kinds[:20] == ["pong"] * 20
    assert kinds.count("pong") < 40
    refused = [f for f in frames if f["type"] == "error"]
    assert refused and {f["error"]["code"] for f in refused} == {"RATE_LIMITED"}
    # A socket that keeps to the pace is never refused.
    async with await Socket.open(live_server.ws_url, alice.token) as calm:
        for _ in range(30):
            await calm.send({"type": "ping"})
            assert (await calm.recv())["type"] == "pong"
            await asyncio.sleep(0.06)


@pytest.mark.parametrize("how", ["nothing", "bad bearer", "bad auth frame", "wrong first frame"])
async def test_unauthenticated_sockets_are_closed_with_4401(
    live_server: LiveServer, how: str
) -> None:
    token = "bst_not-a-real-token" if how == "bad bearer" else None
    ws = await Socket.open(live_server.ws_url, token)
    if how == "bad auth frame":
        await ws.send({"type": "auth", "token": "bst_forged"})
    elif how == "wrong first frame":
        await ws.send({"type": "message", "session_id": "x", "content": "hi"})
    elif how == "nothing":
        ws.connection.close_timeout = 1
        await ws.send("not an auth frame")
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv(timeout=15)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_the_session_cookie_signs_in_from_the_servers_own_origin(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    browser = {"Cookie": f"botserver_session={alice.token}", "Origin": live_server.url}
    async with await Socket.open(live_server.ws_url, headers=browser) as ws:
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        await ws.send({"type": "message", "session_id": session_id, "content": "by cookie"})
        frames = await ws.recv_until(lambda f: f["type"] == "message")
        assert frames[0]["type"] == "ack"
        assert frames[-1]["content"] == "You said: by cookie"


@pytest.mark.parametrize("origin", ["https://evil.example", None])
async def test_the_session_cookie_from_a_foreign_origin_is_closed_with_4403(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, origin: str | None
) -> None:
    session_id = await open_session(client, alice)
    forged = {"Cookie": f"botserver_session={alice.token}"}
    if origin:
        forged["Origin"] = origin
    ws = await Socket.open(live_server.ws_url, headers=forged)
    with pytest.raises(ConnectionClosed) as closed:
        await ws.send({"type": "message", "session_id": session_id, "content": "from elsewhere"})
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    history = await live_server.app.state.services.conversations.messages_after(session_id, 0, 100)
    assert "from elsewhere" not in [m["content"] for m in history]


async def test_an_auth_frame_authenticates(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with await Socket.open(live_server.ws_url) as ws:
        await ws.send({"type": "auth", "token": alice.token})
        assert (await ws.recv())["type"] == "auth_ok"
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        assert (await ws.recv())["content"] == "Hello! Say something."


async def closed_code(ws: Socket, timeout: float = 5.0) -> int | None:
    """Wait, sending nothing, until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv(timeout=timeout, skip=("typing", "message"))
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_logout_closes_the_open_sockets_of_that_login_at_once(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, make_account: MakeAccount
) -> None:
    session_id = await open_session(client, alice)
    bob = await make_account("bob")
    async with (
        await Socket.open(live_server.ws_url, alice.token) as first,
        await Socket.open(live_server.ws_url, alice.token) as second,
        await Socket.open(live_server.ws_url, bob.token) as other,
    ):
        await first.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        for ws in (first, second, other):
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"

        logged_out = await client.post("/auth/logout", headers=alice.headers)
        assert logged_out.status_code == 200, logged_out.text

        assert await closed_code(first) == 4401
        assert await closed_code(second) == 4401
        # Another login's socket is not touched.
        await other.send({"type": "ping"})
        assert (await other.recv())["type"] == "pong"


async def test_a_revocation_the_bus_never_carried_closes_the_socket_at_its_next_frame(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    # As when Redis was down: the database says revoked, no event arrived.
    session_id = await open_session(client, alice)
    services = live_server.app.state.services
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        async with services.db.unit() as uow:
            await uow.login_sessions.revoke(hash_token(alice.token), services.clock.now())
        await ws.expect_silence()
        await ws.send({"type": "message", "session_id": session_id, "content": "hi"})
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    history = await services.conversations.messages_after(session_id, 0, 100)
    assert "hi" not in [m["content"] for m in history]


@pytest.fixture
def short_logins(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["login_session_hours"] = 1.5 / 3600  # 1.5 seconds


async def test_a_socket_closes_when_its_login_session_expires_while_idle(
    short_logins: None, live_server: LiveServer, make_account: MakeAccount
) -> None:
    carol = await make_account("carol")
    async with await Socket.open(live_server.ws_url, carol.token) as ws:
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        assert await closed_code(ws) == 4401


async def test_typing_reaches_the_other_sockets_only(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    async with (
        await Socket.open(live_server.ws_url, alice.token) as first,
        await Socket.open(live_server.ws_url, alice.token) as second,
    ):
        await second.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await second.send({"type": "ping"})
        assert (await second.recv())["type"] == "pong"
        await first.send({"type": "typing", "session_id": session_id})
        typing = await second.recv(skip=())
        assert typing == {"type": "typing", "session_id": session_id, "sender": "user"}
        await first.expect_silence()

        # While the bot works on an answer, every socket is told it is typing.
        await first.send({"type": "message", "session_id": session_id, "content": "hi"})
        frames = await first.recv_until(lambda f: f["type"] == "message")
        assert frames[0]["type"] == "ack"
        second_frames = [await second.recv(skip=()) for _ in range(3)]
        assert [(f["type"], f.get("sender")) for f in second_frames] == [
            ("message", "user"),
            ("typing", "bot"),
            ("message", "bot"),
        ]


@pytest.fixture
def few_sockets(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["ws_max_sockets_per_user"] = 2


async def test_one_user_cannot_open_unlimited_sockets(
    few_sockets: None, live_server: LiveServer, alice: Account, make_account: MakeAccount
) -> None:
    first = await Socket.open(live_server.ws_url, alice.token)
    second = await Socket.open(live_server.ws_url, alice.token)
    for opened in (first, second):  # signed in (and counted) before the third arrives
        await opened.send({"type": "ping"})
        assert (await opened.recv())["type"] == "pong"
    third = await Socket.open(live_server.ws_url, alice.token)
    with pytest.raises(ConnectionClosed) as closed:
        await third.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    # Another user is not affected, and closing one socket frees a place.
    bob = await make_account("bob")
    async with await Socket.open(live_server.ws_url, bob.token) as other:
        await other.send({"type": "ping"})
        assert (await other.recv())["type"] == "pong"
    await first.close()
    await asyncio.sleep(0.2)
    async with await Socket.open(live_server.ws_url, alice.token) as again:
        await again.send({"type": "ping"})
        assert (await again.recv())["type"] == "pong"
    await second.close()


async def test_an_expired_session_says_so_on_the_socket(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, clock: FrozenClock
) -> None:
    session_id = await open_session(client, alice)  # echo: 10 idle minutes
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        clock.advance(minutes=11)
        await ws.send({"type": "message", "session_id": session_id, "content": "hello?"})
        frames = [await ws.recv(), await ws.recv()]
        kinds = {f["type"]: f for f in frames}
        assert kinds["session_ended"]["reason"] == "expired"
        assert kinds["error"]["error"]["code"] == "SESSION_ENDED"
        assert "ack" not in kinds


@pytest.fixture
def small_budget(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["rate_limit_authenticated"] = "6/hour"


async def test_socket_messages_spend_the_users_rate_budget(
    small_budget: None, live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)  # GET /api/bots + POST create: 2 of 6
    async with await Socket.open(live_server.ws_url, alice.token) as ws:  # the handshake: 3
        assert ws.connection.response is not None
        assert ws.connection.response.headers["X-RateLimit-Remaining"] == "3"
        for n in range(3):
            await ws.send({"type": "message", "session_id": session_id, "content": f"m{n}"})
            frames = await ws.recv_until(lambda f: f["type"] in ("message", "error"))
            assert frames[-1]["type"] == "message"
        await ws.send({"type": "message", "session_id": session_id, "content": "one too many"})
        refused = await ws.recv()
        assert refused["type"] == "error"
        assert refused["error"]["code"] == "RATE_LIMITED"
        assert refused["error"]["details"]["retry_after"] > 0
        # The socket stays open, and HTTP shares the same exhausted budget.
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
    response = await client.get("/api/sessions", headers=alice.headers)
    assert response.status_code == 429
    history = await live_server.app.state.services.conversations.messages_after(session_id, 0, 100)
    assert "one too many" not in [m["content"] for m in history]


async def test_a_spent_budget_refuses_the_handshake_too(
    small_budget: None, live_server: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(6):
        assert (await client.get("/api/bots", headers=alice.headers)).status_code == 200
    with pytest.raises(InvalidStatus) as refused:
        await Socket.open(live_server.ws_url, alice.token)
    answer = refused.value.response
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert json.loads(answer.body)["error"]["code"] == "RATE_LIMITED"


@pytest.fixture
def small_public_budget(settings_overrides: dict[str, Any]) -> None:
    settings_overrides["rate_limit_public"] = "3/hour"


async def test_anonymous_handshakes_spend_the_address_budget(
    small_public_budget: None, live_server: LiveServer
) -> None:
    # Sockets that sign in with an `auth` frame are anonymous at the handshake.
    for _ in range(3):
        async with await Socket.open(live_server.ws_url) as ws:
            await ws.connection.close()
    with pytest.raises(InvalidStatus) as refused:
        await Socket.open(live_server.ws_url)
    assert refused.value.response.status_code == 429


async def test_a_revocation_before_the_socket_listens_closes_it_at_once(
    live_server: LiveServer, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    logins = live_server.app.state.services.login_sessions
    use_token = ws_module.Connection._use_token

    async def revoked_right_after_sign_in(
        connection: ws_module.Connection, token: str, *, via: str
    ) -> None:
        await use_token(connection, token, via=via)
        # The logout lands before the socket subscribes: its event reaches no one.
        assert await logins.revoke(token)

    monkeypatch.setattr(ws_module.Connection, "_use_token", revoked_right_after_sign_in)
    ws = await Socket.open(live_server.ws_url, alice.token)
    # Closed without waiting for a frame from the client.
    assert await closed_code(ws) == 4401
