from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest

from botserver.clock import FrozenClock
from botserver.services.container import Services
from botserver.storage.models import Group, new_id
from tests.conftest import Account, MakeAccount


@dataclass
class Cast:
    """A group 'support' owned by the admin, with Olga (owner), Ada (admin) and Max (member)."""

    group_id: str
    root: Account
    olga: Account
    ada: Account
    max: Account
    eve: Account  # not a member


async def add(client: httpx.AsyncClient, by: Account, group_id: str, user: Account, role: str):
    return await client.post(
        f"/api/groups/{group_id}/members/add",
        json={"user_id": user.user_id, "role": role},
        headers=by.headers,
    )


async def remove(client: httpx.AsyncClient, by: Account, group_id: str, user: Account):
    return await client.request(
        "DELETE",
        f"/api/groups/{group_id}/members/remove",
        json={"user_id": user.user_id},
        headers=by.headers,
    )


@pytest.fixture
async def cast(client: httpx.AsyncClient, admin: Account, make_account: MakeAccount) -> Cast:
    olga, ada, max_, eve = [await make_account(name) for name in ("olga", "ada", "max", "eve")]
    created = await client.post(
        "/api/groups/create", json={"name": "support"}, headers=admin.headers
    )
    assert created.status_code == 201
    group_id = created.json()["id"]
    for user, role in ((olga, "owner"), (ada, "admin"), (max_, "member")):
        assert (await add(client, admin, group_id, user, role)).status_code == 200
    return Cast(group_id, admin, olga, ada, max_, eve)


async def test_admin_creates_a_group_and_becomes_its_owner(
    client: httpx.AsyncClient, admin: Account, clock: FrozenClock
) -> None:
    response = await client.post(
        "/api/groups/create",
        json={"name": "  sales ", "description": "The sales team"},
        headers=admin.headers,
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "description", "created_at"}
    assert (body["name"], body["description"]) == ("sales", "The sales team")
    assert body["created_at"] == "2026-01-01T00:00:00Z"

    members = await client.get(f"/api/groups/{body['id']}/members", headers=admin.headers)
    assert members.json()["total"] == 1
    (owner,) = members.json()["members"]
    assert (owner["user_id"], owner["username"], owner["role"]) == (admin.user_id, "root", "owner")
    assert set(owner) == {"user_id", "username", "email", "role", "joined_at"}


async def test_creating_needs_the_admin_role_and_a_unique_valid_name(
    client: httpx.AsyncClient, admin: Account, make_account: MakeAccount
) -> None:
    user = await make_account()
    refused = await client.post("/api/groups/create", json={"name": "x"}, headers=user.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    anonymous = await client.post("/api/groups/create", json={"name": "x"})
    assert anonymous.status_code == 401

    assert (
        await client.post("/api/groups/create", json={"name": "ops"}, headers=admin.headers)
    ).status_code == 201
    duplicate = await client.post("/api/groups/create", json={"name": "ops"}, headers=admin.headers)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "CONFLICT"

    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "n" * 151}):
        invalid = await client.post("/api/groups/create", json=body, headers=admin.headers)
        assert invalid.status_code == 422, body
        assert invalid.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_name_claimed_by_a_concurrent_transaction_is_a_conflict(
    client: httpx.AsyncClient, admin: Account, services: Services, clock: FrozenClock
) -> None:
    # Another request inserts "ops" and has not committed yet, so this
    # request's check for the name finds nothing; the unique index decides.
    async with services.db.unit() as uow:
        await uow.groups.add(Group(id=new_id("group"), name="ops", created_at=clock.now()))
        request = asyncio.create_task(
            client.post("/api/groups/create", json={"name": "ops"}, headers=admin.headers)
        )
        await asyncio.sleep(0.3)
    response = await request
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"
    assert "ops" in response.json()["error"]["message"]


async def test_list_shows_own_groups_and_all_for_admins(
    client: httpx.AsyncClient, cast: Cast, clock: FrozenClock
) -> None:
    for name in ("alpha", "beta"):
        clock.advance(minutes=1)
        await client.post("/api/groups/create", json={"name": name}, headers=cast.root.headers)

    mine = (await client.get("/api/groups/list", headers=cast.max.headers)).json()
    assert mine["total"] == 1
    (group,) = mine["groups"]
    assert set(group) == {"id", "name", "description", "member_count", "created_at"}
    assert (group["name"], group["member_count"]) == ("support", 4)

    assert (await client.get("/api/groups/list", headers=cast.eve.headers)).json() == {
        "groups": [],
        "total": 0,
    }

    everything = await client.get("/api/groups/list?limit=2&offset=1", headers=cast.root.headers)
    assert everything.json()["total"] == 3
    assert [g["name"] for g in everything.json()["groups"]] == ["alpha", "beta"]
    bad_page = await client.get("/api/groups/list?limit=0", headers=cast.root.headers)
    assert bad_page.status_code == 422


async def test_members_needs_membership(client: httpx.AsyncClient, cast: Cast) -> None:
    url = f"/api/groups/{cast.group_id}/members"
    seen = await client.get(url, headers=cast.max.headers)
    assert seen.status_code == 200
    roles = {m["username"]: m["role"] for m in seen.json()["members"]}
    assert roles == {"root": "owner", "olga": "owner", "ada": "admin", "max": "member"}

    hidden = await client.get(url, headers=cast.eve.headers)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "NOT_FOUND"
    missing = await client.get("/api/groups/group-nope/members", headers=cast.root.headers)
    assert missing.status_code == 404


async def test_update_needs_group_owner_or_admin(client: httpx.AsyncClient, cast: Cast) -> None:
    url = f"/api/groups/{cast.group_id}/update"
    assert (
        await client.put(url, json={"description": "x"}, headers=cast.max.headers)
    ).status_code == 403
    assert (
        await client.put(url, json={"description": "x"}, headers=cast.eve.headers)
    ).status_code == 404

    updated = await client.put(
        url, json={"name": "helpdesk", "description": "First line"}, headers=cast.ada.headers
    )
    assert updated.status_code == 200
    body = updated.json()
    assert (body["id"], body["name"], body["description"]) == (
        cast.group_id,
        "helpdesk",
        "First line",
    )
    assert body["member_count"] == 4

    await client.post("/api/groups/create", json={"name": "taken"}, headers=cast.root.headers)
    clash = await client.put(url, json={"name": "taken"}, headers=cast.olga.headers)
    assert clash.status_code == 409


async def test_delete_needs_the_owner(client: httpx.AsyncClient, cast: Cast) -> None:
    url = f"/api/groups/{cast.group_id}/delete"
    assert (await client.delete(url, headers=cast.ada.headers)).status_code == 403
    assert (await client.delete(url, headers=cast.max.headers)).status_code == 403
    assert (await client.delete(url, headers=cast.eve.headers)).status_code == 404

    deleted = await client.delete(url, headers=cast.olga.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "message": "Group deleted"}
    assert (await client.delete(url, headers=cast.olga.headers)).status_code == 404
    listed = await client.get("/api/groups/list", headers=cast.root.headers)
    assert listed.json()["total"] == 0


async def test_system_admins_may_do_everything(
    client: httpx.AsyncClient, cast: Cast, make_account: MakeAccount
) -> None:
    # An admin who is not a member still sees and manages the group.
    other_admin = await make_account("boss", roles=["admin"])
    headers = other_admin.headers
    assert (
        await client.get(f"/api/groups/{cast.group_id}/members", headers=headers)
    ).status_code == 200
    assert (await add(client, other_admin, cast.group_id, cast.eve, "owner")).status_code == 200
    assert (await remove(client, other_admin, cast.group_id, cast.olga)).status_code == 200
    assert (
        await client.delete(f"/api/groups/{cast.group_id}/delete", headers=headers)
    ).status_code == 200


async def test_adding_members(client: httpx.AsyncClient, cast: Cast) -> None:
    added = await add(client, cast.ada, cast.group_id, cast.eve, "member")
    assert added.status_code == 200
    assert added.json() == {"success": True, "message": "Member added"}

    again = await add(client, cast.ada, cast.group_id, cast.eve, "member")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "CONFLICT"

    # Members cannot add; admins cannot grant ownership; owners can.
    newcomer = cast.root
    await remove(client, cast.root, cast.group_id, cast.root)
    assert (await add(client, cast.max, cast.group_id, newcomer, "member")).status_code == 403
    assert (await add(client, cast.ada, cast.group_id, newcomer, "owner")).status_code == 403
    assert (await add(client, cast.olga, cast.group_id, newcomer, "owner")).status_code == 200

    unknown = await client.post(
        f"/api/groups/{cast.group_id}/members/add",
        json={"user_id": "user-nobody"},
        headers=cast.olga.headers,
    )
    assert unknown.status_code == 404
    bad_role = await client.post(
        f"/api/groups/{cast.group_id}/members/add",
        json={"user_id": cast.eve.user_id, "role": "king"},
        headers=cast.olga.headers,
    )
    assert bad_role.status_code == 422


async def test_removing_members(client: httpx.AsyncClient, cast: Cast) -> None:
    assert (await remove(client, cast.max, cast.group_id, cast.ada)).status_code == 403
    assert (await remove(client, cast.eve, cast.group_id, cast.max)).status_code == 404
    # A group admin removes members but not owners.
    assert (await remove(client, cast.ada, cast.group_id, cast.olga)).status_code == 403
    removed = await remove(client, cast.ada, cast.group_id, cast.max)
    assert removed.json() == {"success": True, "message": "Member removed"}
    assert (await remove(client, cast.ada, cast.group_id, cast.max)).status_code == 404

    # The last owner stays.
    assert (await remove(client, cast.olga, cast.group_id, cast.root)).status_code == 200
    last = await remove(client, cast.olga, cast.group_id, cast.olga)
    assert last.status_code == 409


async def test_group_names_for_and_the_audit_trail(
    client: httpx.AsyncClient, cast: Cast, services: Services
) -> None:
    await client.post("/api/groups/create", json={"name": "vip"}, headers=cast.root.headers)
    assert await services.groups.group_names_for(cast.max.user_id) == {"support"}
    assert await services.groups.group_names_for(cast.root.user_id) == {"support", "vip"}
    assert await services.groups.group_names_for(cast.eve.user_id) == set()

    await remove(client, cast.ada, cast.group_id, cast.max)
    assert await services.groups.group_names_for(cast.max.user_id) == set()

    async with services.db.unit() as uow:
        events, _ = await uow.audit.page(100, 0)
    kinds = [event.kind for event in events]
    assert kinds.count("group_created") == 2
    assert kinds.count("group_member_added") == 3
    removal = next(event for event in events if event.kind == "group_member_removed")
    assert (removal.user_id, removal.actor_id) == (cast.max.user_id, cast.ada.user_id)
    assert removal.details["group"] == "support"
