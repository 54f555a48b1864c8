"""Golden transcripts: the example bots driven through the real conversation pipeline."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.wsclient import Socket
from tests.conftest import ROOT, Account, LiveServer, MakeAccount


@pytest.fixture
async def ann(make_account: MakeAccount) -> Account:
    return await make_account("ann")


async def start(client: httpx.AsyncClient, account: Account, bot: str) -> tuple[str, list[str]]:
    bots = (await client.get("/api/bots", headers=account.headers)).json()["bots"]
    bot_id = next(b["id"] for b in bots if b["name"] == bot)
    created = await client.post(
        "/api/session/create", json={"bot_id": bot_id}, headers=account.headers
    )
    session_id = created.json()["session_id"]
    history = await client.get(f"/api/session/{session_id}/messages", headers=account.headers)
    return session_id, [f"bot: {m['content']}" for m in history.json()["messages"]]


async def say(client: httpx.AsyncClient, account: Account, session_id: str, text: str) -> list:
    response = await client.post(
        f"/api/session/{session_id}/messages", json={"content": text}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["replies"]


async def transcript(
    client: httpx.AsyncClient, account: Account, bot: str, inputs: list[str]
) -> list[str]:
    session_id, lines = await start(client, account, bot)
    for text in inputs:
        lines.append(f"user: {text}")
        lines += [f"bot: {r['content']}" for r in await say(client, account, session_id, text)]
    return lines


async def test_default_bot_transcript(
    client: httpx.AsyncClient, ann: Account, make_account: MakeAccount
) -> None:
    lines = await transcript(
        client, ann, "default", ["Ann", "Tell me a joke", "Tell me a joke", "Bye"]
    )
    assert lines == [
        "bot: Hello! I am the default bot.",
        "bot: What is your name?",
        "user: Ann",
        "bot: Nice to meet you, Ann!",
        "bot: What would you like to do, Ann?",
        "user: Tell me a joke",
        "bot: Why do programmers prefer dark mode? Because light attracts bugs.",
        "bot: What would you like to do, Ann?",
        "user: Tell me a joke",
        "bot: There are 10 kinds of people: those who know binary and those who don't.",
        "bot: What would you like to do, Ann?",
        "user: Bye",
        "bot: Goodbye, Ann! Come back soon.",
    ]
    # The name lives in USER MEMORY: a new session greets Ann by name.
    _, greeting = await start(client, ann, "default")
    assert greeting == ["bot: Welcome back, Ann!", "bot: What would you like to do, Ann?"]
    # It is Ann's memory only: another user of the same bot is asked for a name.
    bob = await make_account("bob")
    _, greeting = await start(client, bob, "default")
    assert greeting == ["bot: Hello! I am the default bot.", "bot: What is your name?"]


async def test_default_bot_menu_offers_suggestions(client: httpx.AsyncClient, ann: Account) -> None:
    session_id, _ = await start(client, ann, "default")
    (menu,) = [r for r in await say(client, ann, session_id, "Ann") if r["suggestions"]]
    assert menu["suggestions"] == ["Tell me a joke", "What time is it?", "Change my name", "Bye"]
    retry = await say(client, ann, session_id, "sing a song")
    assert "Tell me a joke" in retry[0]["content"]


async def test_customer_service_transcript_and_bot_memory(
    client: httpx.AsyncClient, ann: Account, make_account: MakeAccount
) -> None:
    inputs = ["Shipping", "12x", "77", "31/12/2026", "ann@example.com", "yes"]
    lines = await transcript(client, ann, "customer-service", inputs)
    assert lines == [
        "bot: Welcome to Acme Corp customer service!",
        "bot: What can I help you with?",
        "user: Shipping",
        "bot: What is your order number?",
        "user: 12x",
        "bot: Please answer with a whole number.",
        "user: 77",
        "bot: When should it have arrived?",
        "user: 31/12/2026",
        "bot: Which email address should we use to reach you?",
        "user: ann@example.com",
        "bot: Shall I open a ticket for: order #77 was due on 31/12/2026?",
        "user: yes",
        "bot: Ticket #1 is open: order #77 was due on 31/12/2026.",
        "bot: We will write to ann@example.com within one business day.",
        "bot: Thank you for contacting Acme Corp. Goodbye!",
    ]
    # BOT MEMORY is shared by every user of the bot: the next ticket is #2.
    bob = await make_account("bob")
    lines = await transcript(
        client, bob, "customer-service", ["Other", "It is broken", "bob@example.com", "yes"]
    )
    assert "bot: Ticket #2 is open: It is broken." in lines


BOTS_SOURCE = ROOT / "tests" / "bots"

# Each waits for "go", then goes over one of the safety limits.
RUNAWAY_BOTS = {
    "loop": 'TALK "Say go."\nHEAR go\ni = 0\nWHILE TRUE\n  i = i + 1\nWEND\n',
    "big": 'TALK "Say go."\nHEAR go\ns = "x"\nFOR i = 1 TO 100\n  s = s & s\nNEXT\nTALK s\n',
    "wide": 'TALK "Say go."\nHEAR go\nitems = [1]\nWHILE TRUE\n  items = items + items\nWEND\n',
    "deep": 'TALK "Say go."\nHEAR go\nCALL dive(1)\nSUB dive(n)\n  CALL dive(n + 1)\nEND SUB\n',
}


def add_bot(target: Path, name: str, dialogs: dict[str, str], config: str = "") -> None:
    package = target / f"{name}.gbai"
    (package / f"{name}.gbot").mkdir(parents=True)
    (package / f"{name}.gbot" / "config.csv").write_text(f"name,value\n{config}")
    (package / f"{name}.gbdialog").mkdir()
    for dialog, source in dialogs.items():
        (package / f"{name}.gbdialog" / f"{dialog}.bas").write_text(source)


@pytest.fixture
def bots_dir(tmp_path: Path) -> Path:
    target = tmp_path / "bots"
    shutil.copytree(BOTS_SOURCE / "survey.gbai", target / "survey.gbai")
    shutil.copytree(BOTS_SOURCE / "echo.gbai", target / "echo.gbai")
    for name, script in RUNAWAY_BOTS.items():
        add_bot(target, name, {"start": script})
    add_bot(
        target,
        "front-desk",
        {
            "start": 'TALK "This is start.bas."\n',
            "welcome": 'TALK "Welcome! Your name?"\nHEAR name\nTALK "Thanks, " & name & "."\n',
        },
        config="start-dialog,welcome\n",
    )
    return target


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if "bots_dir" in request.fixturenames:
        return {"bots_dir": request.getfixturevalue("bots_dir")}
    return {}


async def test_a_runaway_script_ends_its_turn_without_harming_other_sessions(
    bots_dir: Path,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    ann: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sessions = {name: (await start(client, ann, name))[0] for name in RUNAWAY_BOTS}
    echo_session, _ = await start(client, ann, "echo")

    async def chat_meanwhile() -> list[str]:
        async with await Socket.open(live_server.ws_url, ann.token) as ws:
            replies = []
            for n in range(5):
                await ws.send({"type": "message", "session_id": echo_session, "content": f"n{n}"})
                frames = await ws.recv_until(lambda f: f["type"] == "message")
                replies.append(frames[-1]["content"])
            return replies

    runtime_log = "botserver.engine.runtime"
    with caplog.at_level(logging.WARNING, logger=runtime_log):
        *stopped, echoed = await asyncio.gather(
            *(say(client, ann, session_id, "go") for session_id in sessions.values()),
            chat_meanwhile(),
        )
    assert echoed == [f"You said: n{n}" for n in range(5)]
    for replies in stopped:
        assert [r["content"] for r in replies] == [
            "Sorry, something went wrong on my side and I had to stop. "
            "Send a message to start again."
        ]
    # The operator learns which bot stopped and where.
    assert sorted(r.getMessage() for r in caplog.records if r.name == runtime_log) == [
        "Bot big stopped a dialog turn: start.bas:5: String longer than 65536 characters",
        "Bot deep stopped a dialog turn: "
        "start.bas:5: Maximum call depth of 64 exceeded (endless recursion?)",
        "Bot loop stopped a dialog turn: "
        "start.bas:4: Step budget of 10000 instructions exceeded (endless loop?)",
        "Bot wide stopped a dialog turn: start.bas:5: List longer than 10000 items",
    ]

    # Each stopped dialog starts over on the next message.
    for session_id in sessions.values():
        again = await say(client, ann, session_id, "hello?")
        assert [r["content"] for r in again] == ["Say go."]


async def test_a_script_edited_while_a_dialog_waits_restarts_it_cleanly(
    bots_dir: Path, client: httpx.AsyncClient, ann: Account, app: Any
) -> None:
    session_id, _ = await start(client, ann, "survey")
    assert [r["content"] for r in await say(client, ann, session_id, "Ann")] == [
        "How old are you, Ann?"
    ]
    script = bots_dir / "survey.gbai" / "survey.gbdialog" / "start.bas"
    script.write_text('TALK "Pick a colour."\nHEAR colour\nTALK "You like " & colour & "."\n')
    await app.state.services.bots.reload()

    replies = [r["content"] for r in await say(client, ann, session_id, "42")]
    assert replies == ["This conversation was updated, so we are starting over.", "Pick a colour."]
    assert [r["content"] for r in await say(client, ann, session_id, "blue")] == ["You like blue."]


async def test_a_package_can_name_another_entry_dialog(
    bots_dir: Path, client: httpx.AsyncClient, ann: Account
) -> None:
    session_id, greeting = await start(client, ann, "front-desk")
    assert greeting == ["bot: Welcome! Your name?"]
    assert [r["content"] for r in await say(client, ann, session_id, "Ann")] == ["Thanks, Ann."]

    # The dialog has ended: the next message starts the entry dialog again, not start.bas.
    again = await say(client, ann, session_id, "hello")
    assert [r["content"] for r in again] == ["Welcome! Your name?"]
