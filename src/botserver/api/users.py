"""The caller's own user record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from botserver.api.deps import CurrentUser, ServicesDep
from botserver.api.fields import RequestModel
from botserver.clock import isoformat
from botserver.errors import error_responses
from botserver.storage.models import User

router = APIRouter(prefix="/api/users", tags=["users"])

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]


class UserOut(BaseModel):
    user_id: str
    username: str
    email: str | None
    created_at: str
    first_name: str | None
    last_name: str | None
    roles: list[str]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            user_id=user.id,
            username=user.username,
            email=user.email,
            created_at=isoformat(user.created_at),
            first_name=user.first_name,
            last_name=user.last_name,
            roles=list(user.roles or []),
        )


class ProfileUpdate(RequestModel):
    """Fields to change; omit a field to keep it, send null to clear it."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[EmailStr | None, Field(max_length=320)] = None
    first_name: Name | None = None
    last_name: Name | None = None


@router.get("/me", response_model=UserOut, responses=error_responses(401))
async def me(principal: CurrentUser, services: ServicesDep) -> UserOut:
    """The signed-in user."""
    return UserOut.of(await services.profiles.get(principal.user_id))


@router.put("/me", response_model=UserOut, responses=error_responses(401, 403, 409, 422, 503))
async def update_me(
    update: ProfileUpdate, principal: CurrentUser, services: ServicesDep
) -> UserOut:
    """Change the signed-in user's e-mail and names in the directory; answers the updated user."""
    changes = update.model_dump(include=update.model_fields_set)
    user = await services.profiles.update(principal.user_id, changes)
    return UserOut.of(user)
