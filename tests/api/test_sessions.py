"""Bot sessions and REST messaging."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from botserver.clock import FrozenClock
from tests.api.test_ws import bot_id, open_session
from tests.conftest import Account, MakeAccount

BOTS = Path(__file__).resolve().parent.parent / "bots"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"bots_dir": BOTS}


@pytest.fixture
async def alice(make_account: MakeAccount) -> Account:
    return await make_account("alice")


async def test_bots_lists_public_online_bots_and_hides_restricted_ones(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    bots = (await client.get("/api/bots", headers=alice.headers)).json()["bots"]
    by_name = {b["name"]: b for b in bots}
    assert set(by_name) == {"broken", "echo", "survey"}  # staff is for its group only
    assert by_name["echo"] == {
        "id": by_name["echo"]["id"],
        "name": "echo",
        "description": "Repeats what you say",
        "status": "online",
    }
    assert by_name["broken"]["status"] == "offline"
    assert "error" not in by_name["broken"]

    # An admin sees every bot, and why a package failed to load, with file:line.
    admin_view = {
        b["name"]: b for b in (await client.get("/api/bots", headers=admin.headers)).json()["bots"]
    }
    assert set(admin_view) == {"broken", "echo", "staff", "survey"}
    assert admin_view["broken"]["error"].startswith("start.bas:")


async def test_create_session_runs_the_entry_dialog(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    current = (await client.get("/api/session", headers=alice.headers)).json()
    assert current["session_id"] == session_id
    assert current["user_id"] == alice.user_id
    assert current["status"] == "active"
    assert set(current) >= {"session_id", "user_id", "bot_id", "created_at", "expires_at"}
    history = (
        await client.get(f"/api/session/{session_id}/messages", headers=alice.headers)
    ).json()
    assert [(m["seq"], m["sender"], m["content"]) for m in history["messages"]] == [
        (1, "bot", "Hello! Say something.")
    ]
    assert history["next_after_seq"] == 1 and history["has_more"] is False


async def test_create_session_refuses_unknown_restricted_and_offline_bots(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    unknown = await client.post(
        "/api/session/create", json={"bot_id": "bot-nope"}, headers=alice.headers
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"

    staff_id = await bot_id(client, admin, "staff")
    restricted = await client.post(
        "/api/session/create", json={"bot_id": staff_id}, headers=alice.headers
    )
    assert restricted.status_code == 404

    offline = await client.post(
        "/api/session/create",
        json={"bot_id": await bot_id(client, alice, "broken")},
        headers=alice.headers,
    )
    assert offline.status_code == 503
    assert offline.json()["error"]["code"] == "SERVICE_UNAVAILABLE"

    invalid = await client.post("/api/session/create", json={}, headers=alice.headers)
    assert invalid.status_code == 422


async def test_get_session_is_404_without_an_active_one(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.get("/api/session", headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_rest_messaging_answers_with_the_stored_message_and_replies(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    response = await client.post(
        f"/api/session/{session_id}/messages",
        json={"content": "ping", "client_id": "r1"},
        headers=alice.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["message"]["seq"] == 2 and body["message"]["content"] == "ping"
    assert body["message"]["client_id"] == "r1" and body["duplicate"] is False
    assert [(r["seq"], r["content"], r["suggestions"]) for r in body["replies"]] == [
        (3, "You said: ping", ["stop"])
    ]

    again = (
        await client.post(
            f"/api/session/{session_id}/messages",
            json={"content": "ping", "client_id": "r1"},
            headers=alice.headers,
        )
    ).json()
    assert again["duplicate"] is True
    assert again["message"]["message_id"] == body["message"]["message_id"]
    assert [r["seq"] for r in again["replies"]] == [3]

    stop = (
        await client.post(
            f"/api/session/{session_id}/messages", json={"content": "STOP"}, headers=alice.headers
        )
    ).json()
    assert [r["content"] for r in stop["replies"]] == ["Bye."]
    # The dialog ended; the next message starts it again from the top.
    restart = (
        await client.post(
            f"/api/session/{session_id}/messages", json={"content": "hi"}, headers=alice.headers
        )
    ).json()
    assert [r["content"] for r in restart["replies"]] == ["Hello! Say something."]


async def test_history_pages_with_next_after_seq(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await open_session(client, alice)
    for n in range(3):
        await client.post(
            f"/api/session/{session_id}/messages", json={"content": f"m{n}"}, headers=alice.headers
        )
    seen: list[int] = []
    after = 0
    while True:
        page = (
            await client.get(
                f"/api/session/{session_id}/messages",
                params={"after_seq": after, "limit": 3},
                headers=alice.headers,
            )
        ).json()
        seen += [m["seq"] for m in page["messages"]]
        after = page["next_after_seq"]
        if not page["has_more"]:
            break
    assert seen == list(range(1, 8))


async def test_another_users_session_answers_404_everywhere(
    client: httpx.AsyncClient, alice: Account, make_account: MakeAccount
) -> None:
    session_id = await open_session(client, alice)
    mallory = await make_account("mallory")
    for method, path, body in [
        ("GET", f"/api/session/{session_id}/messages", None),
        ("POST", f"/api/session/{session_id}/messages", {"content": "x"}),
        ("DELETE", f"/api/session/{session_id}", None),
    ]:
        response = await client.request(method, path, json=body, headers=mallory.headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "NOT_FOUND"
    assert (await client.get("/api/session", headers=mallory.headers)).status_code == 404
    sessions = (await client.get("/api/sessions", headers=mallory.headers)).json()
    assert sessions["total"] == 0


async def test_admins_may_end_and_read_any_session(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await open_session(client, alice)
    history = await client.get(f"/api/session/{session_id}/messages", headers=admin.headers)
    assert history.status_code == 200
    assert (
        await client.delete(f"/api/session/{session_id}", headers=admin.headers)
    ).status_code == 200
    listed = (await client.get("/api/sessions", headers=alice.headers)).json()
    assert listed["sessions"][0]["status"] == "ended"


async def test_sessions_list_is_paged_newest_first(
    client: httpx.AsyncClient, alice: Account, clock: FrozenClock
) -> None:
    ids = []
    for _ in range(3):
        ids.append(await open_session(client, alice))
        clock.advance(seconds=1)
    page = (await client.get("/api/sessions?limit=2", headers=alice.headers)).json()
    assert page["total"] == 3 and page["limit"] == 2
    assert [s["session_id"] for s in page["sessions"]] == ids[::-1][:2]
    rest = (await client.get("/api/sessions?limit=2&offset=2", headers=alice.headers)).json()
    assert [s["session_id"] for s in rest["sessions"]] == [ids[0]]


async def test_idle_sessions_expire_and_activity_moves_the_expiry(
    client: httpx.AsyncClient, alice: Account, clock: FrozenClock
) -> None:
    # The echo bot's config says session-timeout 10 (minutes).
    session_id = await open_session(client, alice)
    first = (await client.get("/api/session", headers=alice.headers)).json()["expires_at"]

    clock.advance(minutes=9)
    ok = await client.post(
        f"/api/session/{session_id}/messages", json={"content": "still here"}, headers=alice.headers
    )
    assert ok.status_code == 200
    moved = (await client.get("/api/session", headers=alice.headers)).json()["expires_at"]
    assert moved > first

    clock.advance(minutes=9)
    assert (
        await client.post(
            f"/api/session/{session_id}/messages", json={"content": "x"}, headers=alice.headers
        )
    ).status_code == 200

    clock.advance(minutes=11)
    late = await client.post(
        f"/api/session/{session_id}/messages", json={"content": "too late"}, headers=alice.headers
    )
    assert late.status_code == 410
    assert late.json()["error"]["code"] == "SESSION_ENDED"
    assert (await client.get("/api/session", headers=alice.headers)).status_code == 404
    history = (
        await client.get(f"/api/session/{session_id}/messages", headers=alice.headers)
    ).json()
    assert "too late" not in [m["content"] for m in history["messages"]]


async def test_a_bot_without_session_timeout_expires_after_the_default_30_minutes(
    client: httpx.AsyncClient, alice: Account, clock: FrozenClock
) -> None:
    # The survey bot's config names no session-timeout.
    session_id = await open_session(client, alice, "survey")
    path = f"/api/session/{session_id}/messages"
    current = (await client.get("/api/session", headers=alice.headers)).json()
    opened = datetime.fromisoformat(current["created_at"])
    assert datetime.fromisoformat(current["expires_at"]) - opened == timedelta(minutes=30)

    clock.advance(minutes=29)
    answered = await client.post(path, json={"content": "Ana"}, headers=alice.headers)
    assert answered.status_code == 200
    assert [r["content"] for r in answered.json()["replies"]] == ["How old are you, Ana?"]

    clock.advance(minutes=31)
    late = await client.post(path, json={"content": "40"}, headers=alice.headers)
    assert late.status_code == 410
    assert late.json()["error"]["code"] == "SESSION_ENDED"
    listed = (await client.get("/api/sessions", headers=alice.headers)).json()["sessions"]
    assert [(s["session_id"], s["status"]) for s in listed] == [(session_id, "expired")]


async def test_oversized_and_empty_messages_are_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await open_session(client, alice)
    path = f"/api/session/{session_id}/messages"
    empty = await client.post(path, json={"content": ""}, headers=alice.headers)
    assert empty.status_code == 422
    huge = await client.post(path, json={"content": "x" * 20_000}, headers=alice.headers)
    assert huge.status_code == 422
    assert huge.json()["error"]["details"]["fields"][0]["field"] == "content"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/session/SESSION/messages?after_seq={10**30}",
        f"/api/session/SESSION/messages?after_seq={2**31}",
        "/api/session/SESSION/messages?after_seq=-1",
        f"/api/sessions?offset={10**23}",
        f"/api/sessions?limit={10**30}",
        f"/api/groups/list?offset={10**23}",
        f"/api/admin/users?offset={10**23}",
        f"/api/admin/audit?offset={10**23}",
    ],
)
async def test_numbers_out_of_range_are_a_validation_error(
    client: httpx.AsyncClient, alice: Account, admin: Account, path: str
) -> None:
    session_id = await open_session(client, alice)
    caller = admin if path.startswith("/api/admin") else alice
    response = await client.get(path.replace("SESSION", session_id), headers=caller.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["fields"][0]["field"] in {
        "query.after_seq",
        "query.offset",
        "query.limit",
    }
