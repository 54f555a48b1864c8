"""TALK LLM(...) streamed through the real pipeline, a real server and real sockets.

The model is the stand-in server of tests/support/fake_llm.py. Its URL is only
known at run time, so the bots that use it are written into a temporary bots
folder by the fixtures below.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_ws import open_session
from tests.api.wsclient import Socket
from tests.conftest import Account, LiveServer, MakeAccount
from tests.support.fake_llm import KEY, MODEL, FakeLlm, canned_answer, pieces

FAILED = "Sorry, something went wrong on my side and I had to stop. Send a message to start again."

POET = """\
TALK "Name a subject and I will write about it."
WHILE TRUE
    HEAR subject
    IF LEFT(subject, 6) = "short " THEN
        poem = LLM(MID(subject, 7))
        TALK "In short: " & LEFT(poem, 20)
    ELSE
        ADD SUGGESTION "the sea"
        TALK LLM(subject)
    END IF
WEND
"""

MUTE = """\
TALK "I cannot write."
HEAR subject
TALK LLM(subject)
"""


def write_bot(folder: Path, name: str, config: dict[str, str], source: str) -> None:
    package = folder / f"{name}.gbai"
    (package / f"{name}.gbot").mkdir(parents=True)
    (package / f"{name}.gbdialog").mkdir()
    rows = "".join(f"{key},{value}\n" for key, value in config.items())
    (package / f"{name}.gbot" / "config.csv").write_text("name,value\n" + rows, encoding="utf-8")
    (package / f"{name}.gbdialog" / "start.bas").write_text(source, encoding="utf-8")


@pytest.fixture
def fake_llm() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(fake_llm: FakeLlm, tmp_path: Path) -> dict[str, Any]:
    bots = tmp_path / "bots"
    poet = {"llm-url": fake_llm.url, "llm-model": MODEL, "llm-key": KEY, "llm-system": "Rhyme."}
    write_bot(bots, "poet", poet, POET)
    write_bot(bots, "mute", {"description": "No model configured"}, MUTE)
    return {"bots_dir": bots}


@pytest.fixture
async def alice(make_account: MakeAccount) -> Account:
    return await make_account("alice")


def is_final(frame: dict[str, Any]) -> bool:
    """A complete bot message (user messages are complete too, but not what we wait for)."""
    return frame["type"] == "message" and frame["sender"] == "bot" and frame["is_complete"]


async def history(client: httpx.AsyncClient, account: Account, session_id: str) -> list[dict]:
    response = await client.get(f"/api/session/{session_id}/messages", headers=account.headers)
    assert response.status_code == 200
    messages: list[dict] = response.json()["messages"]
    return messages


async def test_a_streamed_answer_arrives_in_pieces_then_whole(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, fake_llm: FakeLlm
) -> None:
    session_id = await open_session(client, alice, "poet")
    answer = canned_answer("the moon")
    async with (
        await Socket.open(live_server.ws_url, alice.token) as writer,
        await Socket.open(live_server.ws_url, alice.token) as watcher,
    ):
        await watcher.send({"type": "resume", "session_id": session_id, "after_seq": 0})
        greeting = await watcher.recv()
        assert (greeting["seq"], greeting["is_complete"]) == (1, True)

        await writer.send({"type": "message", "session_id": session_id, "content": "the moon"})
        frames = await writer.recv_until(is_final)
        watched = await watcher.recv_until(is_final)

    ack, *deltas, final = frames
    assert (ack["type"], ack["seq"]) == ("ack", 2)
    assert len(deltas) >= 2
    for delta in deltas:
        assert delta["type"] == "message" and delta["is_complete"] is False
        assert (delta["seq"], delta["message_id"]) == (3, final["message_id"])
        assert delta["sender"] == "bot" and delta["session_id"] == session_id
        assert "content" not in delta
    assert "".join(d["delta"] for d in deltas) == answer
    assert (final["seq"], final["content"], final["suggestions"]) == (3, answer, ["the sea"])
    assert "delta" not in final

    # Another socket on the session sees the same thing: its user message, pieces, the whole.
    assert watched[0]["content"] == "the moon" and watched[0]["seq"] == 2
    assert [f["delta"] for f in watched[1:-1]] == [d["delta"] for d in deltas]
    assert watched[-1] == final

    # Stored once, whole; a socket resuming later gets only stored messages.
    stored = await history(client, alice, session_id)
    assert [(m["seq"], m["sender"]) for m in stored] == [(1, "bot"), (2, "user"), (3, "bot")]
    assert stored[2]["content"] == answer and stored[2]["message_id"] == final["message_id"]
    async with await Socket.open(live_server.ws_url, alice.token) as late:
        await late.send({"type": "resume", "session_id": session_id, "after_seq": 1})
        replay = [await late.recv() for _ in range(2)]
        await late.expect_silence()
    assert [(f["seq"], f["is_complete"], "delta" in f) for f in replay] == [
        (2, True, False),
        (3, True, False),
    ]
    assert replay[1]["content"] == answer

    request = fake_llm.requests[-1]
    assert request["stream"] is True
    assert request["messages"][-1] == {"role": "user", "content": "the moon"}
    assert request["messages"][0] == {"role": "system", "content": "Rhyme."}


async def test_rest_replies_hold_the_whole_streamed_message(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice, "poet")
    response = await client.post(
        f"/api/session/{session_id}/messages", json={"content": "rain"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["seq"], r["content"]) for r in body["replies"]] == [(3, canned_answer("rain"))]
    assert body["replies"][0]["suggestions"] == ["the sea"]


async def test_llm_in_an_expression_is_not_streamed(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, fake_llm: FakeLlm
) -> None:
    session_id = await open_session(client, alice, "poet")
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "message", "session_id": session_id, "content": "short snow"})
        ack, reply = await ws.recv_until(is_final)
    assert reply["content"] == "In short: " + canned_answer("snow")[:20]
    assert reply["seq"] == ack["seq"] + 1
    assert fake_llm.requests[-1]["stream"] is False


async def test_a_stream_failing_midway_ends_with_what_arrived_then_the_apology(
    live_server: LiveServer,
    client: httpx.AsyncClient,
    alice: Account,
    fake_llm: FakeLlm,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    session_id = await open_session(client, alice, "poet")
    fake_llm.fail_after = 20  # words, so well past the first delta
    partial = "".join(pieces(canned_answer("the tide"))[:20])
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "message", "session_id": session_id, "content": "the tide"})
        frames = await ws.recv_until(lambda f: is_final(f) and f["content"] == FAILED)

    ack, *deltas, stopped, apology = frames
    assert ack["type"] == "ack"
    assert deltas and all(d["is_complete"] is False and d["seq"] == 3 for d in deltas)
    assert "".join(d["delta"] for d in deltas) == partial
    assert (stopped["seq"], stopped["content"], stopped["is_complete"]) == (3, partial, True)
    assert (apology["seq"], apology["is_complete"]) == (4, True)

    stored = await history(client, alice, session_id)
    assert [(m["seq"], m["content"]) for m in stored[2:]] == [(3, partial), (4, FAILED)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected = f"start.bas:9: The LLM endpoint at http://127.0.0.1:{fake_llm.port} broke off"
    assert any(expected in message for message in warnings), warnings
    assert KEY not in caplog.text


async def test_a_refused_key_is_logged_for_the_operator_but_never_the_key(
    live_server: LiveServer,
    client: httpx.AsyncClient,
    alice: Account,
    fake_llm: FakeLlm,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_llm.key = "a-different-key"  # so the stand-in refuses ours and quotes it back
    session_id = await open_session(client, alice, "poet")
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send({"type": "message", "session_id": session_id, "content": "hills"})
        frames = await ws.recv_until(is_final)
    assert [f["type"] for f in frames] == ["ack", "message"]  # no delta, no half message
    assert frames[-1]["content"] == FAILED and frames[-1]["seq"] == 3

    assert "answered 401 Unauthorized: Incorrect API key provided: ***" in caplog.text
    assert KEY not in caplog.text
    assert all(KEY not in str(frame) for frame in frames)


async def test_a_bot_without_llm_url_stops_with_a_clear_error(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await open_session(client, alice, "mute")
    with caplog.at_level(logging.WARNING):
        response = await client.post(
            f"/api/session/{session_id}/messages", json={"content": "x"}, headers=alice.headers
        )
    assert [r["content"] for r in response.json()["replies"]] == [FAILED]
    assert "start.bas:3: This bot has no llm-url configured" in caplog.text


async def test_a_socket_resuming_midway_gets_the_rest_of_the_stream_then_the_whole(
    live_server: LiveServer, client: httpx.AsyncClient, alice: Account, fake_llm: FakeLlm
) -> None:
    session_id = await open_session(client, alice, "poet")
    fake_llm.delay = 0.03  # about a second for the whole answer
    answer = canned_answer("the night")
    async with await Socket.open(live_server.ws_url, alice.token) as writer:
        await writer.send({"type": "message", "session_id": session_id, "content": "the night"})
        await writer.recv_until(lambda f: f.get("is_complete") is False)  # streaming has begun
        async with await Socket.open(live_server.ws_url, alice.token) as joiner:
            await joiner.send({"type": "resume", "session_id": session_id, "after_seq": 0})
            frames = await joiner.recv_until(lambda f: is_final(f) and f["seq"] == 3)
        await writer.recv_until(is_final)  # read up, so that closing is quick

    # Stored messages replay first; the streamed one is not stored yet, so it comes live.
    assert [f["seq"] for f in frames[:2]] == [1, 2]
    deltas, final = frames[2:-1], frames[-1]
    assert all(d["seq"] == 3 and d["is_complete"] is False for d in deltas)
    assert answer.endswith("".join(d["delta"] for d in deltas))
    assert (final["seq"], final["content"]) == (3, answer)
