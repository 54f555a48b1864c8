"""The contract's authentication endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from botserver.api.deps import CurrentUser
from botserver.clock import isoformat
from botserver.errors import error_responses

router = APIRouter(prefix="/auth", tags=["auth"])


class Validation(BaseModel):
    valid: bool
    user_id: str
    expires_at: str


@router.get("/validate", response_model=Validation, responses=error_responses(401))
async def validate(principal: CurrentUser) -> Validation:
    """Describe the caller's login session; 401 when it is invalid or expired."""
    return Validation(
        valid=True, user_id=principal.user_id, expires_at=isoformat(principal.expires_at)
    )
