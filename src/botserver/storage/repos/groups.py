from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.errors import Duplicate
from botserver.storage.models import Group, GroupMembership, User


class GroupRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, group_id: str) -> Group | None:
        return await self.session.get(Group, group_id)

    async def by_name(self, name: str) -> Group | None:
        result = await self.session.execute(select(Group).where(Group.name == name))
        return result.scalar_one_or_none()

    async def add(self, group: Group) -> Group:
        """Store a new group; `Duplicate` when its name is taken."""
        self.session.add(group)
        await self._flush_unique()
        return group

    async def update(self, group: Group, changes: dict[str, Any]) -> None:
        """Apply `changes` to the group's columns; `Duplicate` when a new name is taken."""
        for field, value in changes.items():
            setattr(group, field, value)
        await self._flush_unique()

    async def delete(self, group: Group) -> None:
        await self.session.execute(
            delete(GroupMembership).where(GroupMembership.group_id == group.id)
        )
        await self.session.delete(group)
        await self.session.flush()

    async def page(
        self, limit: int, offset: int, *, member_id: str | None = None
    ) -> tuple[list[tuple[Group, int]], int]:
        """Groups with their member counts, oldest first; only `member_id`'s when given."""
        groups = select(Group.id)
        if member_id is not None:
            groups = groups.join(GroupMembership, GroupMembership.group_id == Group.id).where(
                GroupMembership.user_id == member_id
            )
        total = await self.session.scalar(select(func.count()).select_from(groups.subquery()))

        counts = (
            select(GroupMembership.group_id, func.count().label("members"))
            .group_by(GroupMembership.group_id)
            .subquery()
        )
        query = (
            select(Group, func.coalesce(counts.c.members, 0))
            .outerjoin(counts, counts.c.group_id == Group.id)
            .where(Group.id.in_(groups))
            .order_by(Group.created_at, Group.id)
            .limit(limit)
            .offset(offset)
        )
        rows = (await self.session.execute(query)).all()
        return [(row[0], int(row[1])) for row in rows], int(total or 0)

    async def membership(self, group_id: str, user_id: str) -> GroupMembership | None:
        return await self.session.get(GroupMembership, (group_id, user_id))

    async def add_member(self, membership: GroupMembership) -> None:
        """Store a membership; `Duplicate` when the user already belongs to the group."""
        self.session.add(membership)
        await self._flush_unique()

    async def remove_member(self, membership: GroupMembership) -> None:
        await self.session.delete(membership)
        await self.session.flush()

    async def count_role(self, group_id: str, role: str) -> int:
        query = select(func.count()).where(
            GroupMembership.group_id == group_id, GroupMembership.role == role
        )
        return int(await self.session.scalar(query) or 0)

    async def members(
        self, group_id: str, limit: int, offset: int
    ) -> tuple[list[tuple[GroupMembership, User]], int]:
        total = await self.session.scalar(
            select(func.count()).where(GroupMembership.group_id == group_id)
        )
        result = await self.session.execute(
            select(GroupMembership, User)
            .join(User, User.id == GroupMembership.user_id)
            .where(GroupMembership.group_id == group_id)
            .order_by(GroupMembership.joined_at, User.username)
            .limit(limit)
            .offset(offset)
        )
        return [(row[0], row[1]) for row in result.all()], int(total or 0)

    async def names_for(self, user_id: str) -> set[str]:
        result = await self.session.execute(
            select(Group.name)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(GroupMembership.user_id == user_id)
        )
        return set(result.scalars())

    async def _flush_unique(self) -> None:
        # Checking first does not stop two transactions from inserting the
        # same name at once; the unique constraints do, and this names it.
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise Duplicate(str(exc.orig)) from exc
