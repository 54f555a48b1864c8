"""A NUL character in anything a client sends is refused by name, and nothing is stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from botserver.services.container import Services
from tests.api.test_ws import BOTS, alice, open_session  # noqa: F401 - fixture
from tests.api.wsclient import Socket
from tests.conftest import Account, LiveServer


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"bots_dir": BOTS}


def refused_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    return [field["field"] for field in error["details"]["fields"]]


async def contents(services: Services, session_id: str) -> list[str]:
    return [m["content"] for m in await services.conversations.messages_after(session_id, 0, 100)]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content": "hello\x00world"}, "content"),
        ({"content": "hello", "client_id": "c\x00"}, "client_id"),
    ],
)
async def test_a_rest_message_with_nul_is_refused_and_not_stored(
    client: httpx.AsyncClient,
    services: Services,
    alice: Account,  # noqa: F811
    body: dict[str, str],
    field: str,
) -> None:
    session_id = await open_session(client, alice)
    answer = await client.post(
        f"/api/session/{session_id}/messages", json=body, headers=alice.headers
    )
    assert refused_fields(answer) == [field]
    assert await contents(services, session_id) == ["Hello! Say something."]


async def test_nul_in_a_path_or_query_is_refused_before_any_lookup(
    client: httpx.AsyncClient,
    alice: Account,  # noqa: F811
) -> None:
    session_id = await open_session(client, alice)
    for method, url in [
        ("GET", f"/api/session/{session_id}%00/messages"),
        ("DELETE", "/api/session/%00"),
        ("GET", "/api/groups/g%00/members"),
    ]:
        answer = await client.request(method, url, headers=alice.headers)
        assert refused_fields(answer) == ["path"], url
    answer = await client.get("/auth/callback?code=abc&state=s%00t")
    assert refused_fields(answer) == ["query.state"]
    # The session itself is untouched.
    still = await client.get(f"/api/session/{session_id}/messages", headers=alice.headers)
    assert still.status_code == 200


async def test_a_new_session_for_a_bot_id_with_nul_is_refused(
    client: httpx.AsyncClient,
    alice: Account,  # noqa: F811
) -> None:
    answer = await client.post(
        "/api/session/create", json={"bot_id": "echo\x00"}, headers=alice.headers
    )
    assert refused_fields(answer) == ["bot_id"]
    assert (await client.get("/api/sessions", headers=alice.headers)).json()["total"] == 0


@pytest.mark.parametrize("field", ["first_name", "last_name", "email"])
async def test_a_profile_field_with_nul_is_refused_and_the_profile_kept(
    client: httpx.AsyncClient,
    alice: Account,  # noqa: F811
    field: str,
) -> None:
    value = "alice\x00@example.com" if field == "email" else "Al\x00ice"
    answer = await client.put("/api/users/me", json={field: value}, headers=alice.headers)
    assert refused_fields(answer) == [field]
    me = (await client.get("/api/users/me", headers=alice.headers)).json()
    assert (me["email"], me["first_name"], me["last_name"]) == ("alice@example.com", None, None)


async def test_group_names_and_member_ids_with_nul_are_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for body, field in [
        ({"name": "team\x00"}, "name"),
        ({"name": "team", "description": "a\x00b"}, "description"),
    ]:
        answer = await client.post("/api/groups/create", json=body, headers=admin.headers)
        assert refused_fields(answer) == [field]
    assert (await client.get("/api/groups/list", headers=admin.headers)).json()["total"] == 0

    created = await client.post("/api/groups/create", json={"name": "team"}, headers=admin.headers)
    group_id = created.json()["id"]
    renamed = await client.put(
        f"/api/groups/{group_id}/update", json={"name": "t\x00"}, headers=admin.headers
    )
    assert refused_fields(renamed) == ["name"]
    added = await client.post(
        f"/api/groups/{group_id}/members/add", json={"user_id": "u\x00"}, headers=admin.headers
    )
    assert refused_fields(added) == ["user_id"]
    groups = (await client.get("/api/groups/list", headers=admin.headers)).json()["groups"]
    assert [(g["name"], g["member_count"]) for g in groups] == [("team", 1)]


@pytest.mark.parametrize("field", ["content", "client_id", "session_id"])
async def test_a_socket_frame_with_nul_gets_an_error_and_the_socket_stays_open(
    live_server: LiveServer,
    client: httpx.AsyncClient,
    alice: Account,  # noqa: F811
    field: str,
) -> None:
    session_id = await open_session(client, alice)
    frame = {"type": "message", "session_id": session_id, "content": "hi", "client_id": "c1"}
    frame[field] = f"{frame[field]}\x00"
    async with await Socket.open(live_server.ws_url, alice.token) as ws:
        await ws.send(frame)
        error = await ws.recv()
        assert error["type"] == "error"
        assert error["error"]["code"] == "VALIDATION_ERROR"
        assert [f["field"] for f in error["error"]["details"]["fields"]] == [field]

        # Nothing was stored, and the socket goes on working.
        await ws.send({"type": "message", "session_id": session_id, "content": "hi"})
        frames = await ws.recv_until(lambda f: f["type"] == "message")
        assert frames[-1]["content"] == "You said: hi"
    assert await contents(live_server.app.state.services, session_id) == [
        "Hello! Say something.",
        "hi",
        "You said: hi",
    ]
