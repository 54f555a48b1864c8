"""Group management (CLARIFICATIONS §8), paths exactly as the upstream Groups API names them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints

from botserver.api.deps import CurrentUser, Offset, ServicesDep
from botserver.api.fields import RequestModel
from botserver.clock import isoformat
from botserver.errors import error_responses
from botserver.services.groups import GroupSummary, Member
from botserver.storage.models import Group

router = APIRouter(prefix="/api/groups", tags=["groups"])

GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
GroupRole = Literal["owner", "admin", "member"]
Limit = Annotated[int, Query(ge=1, le=200)]


class CreateGroup(RequestModel):
    name: GroupName
    description: Description | None = None


class UpdateGroup(RequestModel):
    name: GroupName | None = None
    description: Description | None = None


class AddMember(RequestModel):
    user_id: str = Field(min_length=1, max_length=48)
    role: GroupRole = "member"


class RemoveMember(RequestModel):
    user_id: str = Field(min_length=1, max_length=48)


class GroupOut(BaseModel):
    id: str
    name: str
    description: str | None
    created_at: str


class GroupListItem(GroupOut):
    member_count: int


class GroupList(BaseModel):
    groups: list[GroupListItem]
    total: int


class MemberOut(BaseModel):
    user_id: str
    username: str
    email: str | None
    role: str
    joined_at: str


class MemberList(BaseModel):
    members: list[MemberOut]
    total: int


class Outcome(BaseModel):
    success: bool
    message: str


def _group(group: Group) -> GroupOut:
    return GroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        created_at=isoformat(group.created_at),
    )


def _summary(summary: GroupSummary) -> GroupListItem:
    return GroupListItem(**_group(summary.group).model_dump(), member_count=summary.member_count)


def _member(member: Member) -> MemberOut:
    return MemberOut(
        user_id=member.user.id,
        username=member.user.username,
        email=member.user.email,
        role=member.membership.role,
        joined_at=isoformat(member.membership.joined_at),
    )


@router.post(
    "/create", status_code=201, response_model=GroupOut, responses=error_responses(401, 403, 409)
)
async def create_group(
    body: CreateGroup, principal: CurrentUser, services: ServicesDep
) -> GroupOut:
    """Create a group (system admins only); the creator becomes its owner."""
    group = await services.groups.create(principal, body.name, body.description)
    return _group(group)


@router.put(
    "/{group_id}/update",
    response_model=GroupListItem,
    responses=error_responses(401, 403, 404, 409),
)
async def update_group(
    group_id: str, body: UpdateGroup, principal: CurrentUser, services: ServicesDep
) -> GroupListItem:
    """Rename a group or change its description (group owners and admins)."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        changes.pop("name")
    summary = await services.groups.update(principal, group_id, changes)
    return _summary(summary)


@router.delete(
    "/{group_id}/delete", response_model=Outcome, responses=error_responses(401, 403, 404)
)
async def delete_group(group_id: str, principal: CurrentUser, services: ServicesDep) -> Outcome:
    """Delete a group and its memberships (group owners only)."""
    await services.groups.delete(principal, group_id)
    return Outcome(success=True, message="Group deleted")


@router.get("/list", response_model=GroupList, responses=error_responses(401))
async def list_groups(
    principal: CurrentUser, services: ServicesDep, limit: Limit = 50, offset: Offset = 0
) -> GroupList:
    """The caller's groups (every group for system admins), oldest first."""
    summaries, total = await services.groups.page(principal, limit, offset)
    return GroupList(groups=[_summary(summary) for summary in summaries], total=total)


@router.get("/{group_id}/members", response_model=MemberList, responses=error_responses(401, 404))
async def list_members(
    group_id: str,
    principal: CurrentUser,
    services: ServicesDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> MemberList:
    """A group's members with their group roles (members of the group only)."""
    members, total = await services.groups.members(principal, group_id, limit, offset)
    return MemberList(members=[_member(member) for member in members], total=total)


@router.post(
    "/{group_id}/members/add",
    response_model=Outcome,
    responses=error_responses(401, 403, 404, 409),
)
async def add_member(
    group_id: str, body: AddMember, principal: CurrentUser, services: ServicesDep
) -> Outcome:
    """Add a user to a group (group owners and admins; only owners grant `owner`)."""
    await services.groups.add_member(principal, group_id, body.user_id, body.role)
    return Outcome(success=True, message="Member added")


@router.delete(
    "/{group_id}/members/remove",
    response_model=Outcome,
    responses=error_responses(401, 403, 404, 409),
)
async def remove_member(
    group_id: str, body: RemoveMember, principal: CurrentUser, services: ServicesDep
) -> Outcome:
    """Remove a user from a group (group owners and admins; only owners remove owners)."""
    await services.groups.remove_member(principal, group_id, body.user_id)
    return Outcome(success=True, message="Member removed")
