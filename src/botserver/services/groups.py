"""Groups of users: who may see and change them (CLARIFICATIONS §8).

Group roles are ``owner``, ``admin`` and ``member``. A group is invisible
(404, never 403) to anyone who is neither a member nor a system admin, so
ids cannot be probed. Members may look; group owners and admins manage
members and settings; only owners delete the group or grant ownership; a
group always keeps at least one owner. System admins may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botserver.clock import Clock
from botserver.errors import ApiError
from botserver.services.principal import Principal
from botserver.storage.db import Database
from botserver.storage.errors import Duplicate
from botserver.storage.models import Group, GroupMembership, User, new_id
from botserver.storage.unit import UnitOfWork

OWNER, ADMIN, MEMBER = "owner", "admin", "member"
GROUP_ROLES = (OWNER, ADMIN, MEMBER)
MANAGERS = (OWNER, ADMIN)


@dataclass(frozen=True)
class GroupSummary:
    group: Group
    member_count: int


@dataclass(frozen=True)
class Member:
    membership: GroupMembership
    user: User


class GroupService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def group_names_for(self, user_id: str) -> set[str]:
        """Names of the groups `user_id` belongs to (bot packages restrict by group name)."""
        async with self.db.unit() as uow:
            return await uow.groups.names_for(user_id)

    async def create(self, principal: Principal, name: str, description: str | None) -> Group:
        if not principal.is_admin:
            raise ApiError.forbidden("Creating groups requires the admin role.")
        now = self.clock.now()
        try:
            async with self.db.unit() as uow:
                if await uow.groups.by_name(name):
                    raise _duplicate(name)
                group = await uow.groups.add(
                    Group(id=new_id("group"), name=name, description=description, created_at=now)
                )
                await uow.groups.add_member(
                    GroupMembership(
                        group_id=group.id, user_id=principal.user_id, role=OWNER, joined_at=now
                    )
                )
                await self._audit(uow, "group_created", principal, group, name=name)
        except Duplicate as exc:
            raise _duplicate(name) from exc
        return group

    async def update(
        self, principal: Principal, group_id: str, changes: dict[str, Any]
    ) -> GroupSummary:
        """Apply `changes` (only `name` and/or `description`) and answer the group."""
        try:
            async with self.db.unit() as uow:
                group, membership = await _visible(uow, group_id, principal)
                _require(
                    principal, membership, MANAGERS, "Only group owners and admins may edit it."
                )
                name = changes.get("name")
                if name is not None and name != group.name and await uow.groups.by_name(name):
                    raise _duplicate(name)
                await uow.groups.update(group, changes)
                if changes:
                    await self._audit(uow, "group_updated", principal, group, changes=changes)
                _, count = await uow.groups.members(group.id, 0, 0)
        except Duplicate as exc:
            raise _duplicate(str(changes.get("name"))) from exc
        return GroupSummary(group, count)

    async def delete(self, principal: Principal, group_id: str) -> None:
        async with self.db.unit() as uow:
            group, membership = await _visible(uow, group_id, principal)
            _require(principal, membership, (OWNER,), "Only group owners may delete it.")
            await uow.groups.delete(group)
            await self._audit(uow, "group_deleted", principal, group, name=group.name)

    async def page(
        self, principal: Principal, limit: int, offset: int
    ) -> tuple[list[GroupSummary], int]:
        """The caller's groups; every group for system admins."""
        member_id = None if principal.is_admin else principal.user_id
        async with self.db.unit() as uow:
            rows, total = await uow.groups.page(limit, offset, member_id=member_id)
        return [GroupSummary(group, count) for group, count in rows], total

    async def members(
        self, principal: Principal, group_id: str, limit: int, offset: int
    ) -> tuple[list[Member], int]:
        async with self.db.unit() as uow:
            await _visible(uow, group_id, principal)
            rows, total = await uow.groups.members(group_id, limit, offset)
        return [Member(membership, user) for membership, user in rows], total

    async def add_member(
        self, principal: Principal, group_id: str, user_id: str, role: str = MEMBER
    ) -> None:
        try:
            async with self.db.unit() as uow:
                group, membership = await _visible(uow, group_id, principal)
                _require(
                    principal, membership, MANAGERS, "Only group owners and admins add members."
                )
                if role == OWNER:
                    _require(principal, membership, (OWNER,), "Only group owners grant ownership.")
                if await uow.users.get(user_id) is None:
                    raise ApiError.not_found("User")
                if await uow.groups.membership(group_id, user_id):
                    raise ApiError.conflict("The user is already a member of this group.")
                await uow.groups.add_member(
                    GroupMembership(
                        group_id=group_id, user_id=user_id, role=role, joined_at=self.clock.now()
                    )
                )
                await self._audit(
                    uow, "group_member_added", principal, group, user_id=user_id, role=role
                )
        except Duplicate as exc:
            raise ApiError.conflict("The user is already a member of this group.") from exc

    async def remove_member(self, principal: Principal, group_id: str, user_id: str) -> None:
        async with self.db.unit() as uow:
            group, membership = await _visible(uow, group_id, principal)
            _require(
                principal, membership, MANAGERS, "Only group owners and admins remove members."
            )
            target = await uow.groups.membership(group_id, user_id)
            if target is None:
                raise ApiError.not_found("Member")
            if target.role == OWNER:
                _require(principal, membership, (OWNER,), "Only group owners remove an owner.")
                if await uow.groups.count_role(group_id, OWNER) <= 1:
                    raise ApiError.conflict(
                        "A group keeps at least one owner; add another owner or delete the group."
                    )
            await uow.groups.remove_member(target)
            await self._audit(
                uow, "group_member_removed", principal, group, user_id=user_id, role=target.role
            )

    async def _audit(
        self,
        uow: UnitOfWork,
        kind: str,
        principal: Principal,
        group: Group,
        *,
        user_id: str | None = None,
        **details: Any,
    ) -> None:
        await uow.audit.record(
            kind,
            self.clock.now(),
            user_id=user_id,
            actor_id=principal.user_id,
            details={"group_id": group.id, "group": group.name, **details},
        )


async def _visible(
    uow: UnitOfWork, group_id: str, principal: Principal
) -> tuple[Group, GroupMembership | None]:
    """The group and the caller's membership; 404 when the caller may not see it."""
    group = await uow.groups.get(group_id)
    membership = await uow.groups.membership(group_id, principal.user_id) if group else None
    if group is None or (membership is None and not principal.is_admin):
        raise ApiError.not_found("Group")
    return group, membership


def _require(
    principal: Principal,
    membership: GroupMembership | None,
    roles: tuple[str, ...],
    message: str,
) -> None:
    if principal.is_admin:
        return
    if membership is None or membership.role not in roles:
        raise ApiError.forbidden(message)


def _duplicate(name: str) -> ApiError:
    return ApiError.conflict(f"A group named {name!r} already exists.")
