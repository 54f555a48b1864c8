"""GET /api/bots: the bots this user may talk to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from botserver.api.deps import CurrentUser, ServicesDep
from botserver.errors import error_responses

router = APIRouter(prefix="/api", tags=["bots"])


class BotView(BaseModel):
    id: str
    name: str
    description: str
    status: str
    error: str | None = None


class BotList(BaseModel):
    bots: list[BotView]


@router.get(
    "/bots",
    response_model=BotList,
    response_model_exclude_none=True,
    responses=error_responses(401),
)
async def list_bots(principal: CurrentUser, services: ServicesDep) -> BotList:
    """List public bots plus those restricted to the caller's groups; admins see load errors."""
    groups = await services.conversations.groups_of(principal)
    bots = [
        BotView(
            id=bot.id,
            name=bot.name,
            description=bot.description,
            status=bot.status,
            error=bot.error if principal.is_admin else None,
        )
        for bot in await services.bots.list_all()
        if services.bots.visible_to(bot, groups, principal.is_admin)
    ]
    return BotList(bots=bots)
