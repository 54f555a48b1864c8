"""Admin endpoints (CLARIFICATIONS §9): system status and metrics, users, audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from botserver.api.deps import AdminUser, Offset, ServicesDep
from botserver.api.fields import RequestModel
from botserver.clock import isoformat, utc
from botserver.errors import error_responses
from botserver.services import admin as admin_actions
from botserver.services.monitoring import metrics_snapshot, prometheus_text, system_status
from botserver.storage.models import Bot, User

router = APIRouter(prefix="/api/admin", tags=["admin"], responses=error_responses(401, 403))

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Limit = Annotated[int, Query(ge=1, le=200)]


class UserOut(BaseModel):
    user_id: str
    username: str
    email: str | None
    first_name: str | None
    last_name: str | None
    roles: list[str]
    created_at: str


class UserList(BaseModel):
    users: list[UserOut]
    total: int


class RoleChange(RequestModel):
    role: Literal["user", "admin"]


class BotOut(BaseModel):
    id: str
    name: str
    description: str
    status: str
    error: str | None
    public: bool
    groups: list[str]
    loaded_at: str


class BotList(BaseModel):
    bots: list[BotOut]


class AuditEventOut(BaseModel):
    id: int
    kind: str
    user_id: str | None
    actor_id: str | None
    ip: str | None
    details: dict[str, Any]
    created_at: str


class AuditList(BaseModel):
    events: list[AuditEventOut]
    total: int


def _user(user: User) -> UserOut:
    return UserOut(
        user_id=user.id,
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        roles=list(user.roles or []),
        created_at=isoformat(user.created_at),
    )


def _bots(bots: list[Bot]) -> BotList:
    # A package's config is left out: it may hold credentials (an LLM key, say).
    return BotList(
        bots=[
            BotOut(
                id=bot.id,
                name=bot.name,
                description=bot.description,
                status=bot.status,
                error=bot.error,
                public=bot.public,
                groups=list(bot.groups or []),
                loaded_at=isoformat(bot.loaded_at),
            )
            for bot in bots
        ]
    )


CheckStatus = Literal["ok", "degraded", "error"]


class Check(BaseModel):
    status: CheckStatus
    latency_ms: float
    message: str | None = None  # why a check is not ok


class DirectoryCheck(Check):
    mode: Literal["embedded", "external"] | None = None


class RedisCheck(Check):
    events: Literal["flowing", "interrupted"] | None = None


class BotsCheck(Check):
    total: int | None = None
    offline: list[str] | None = None


class Checks(BaseModel):
    database: Check
    directory: DirectoryCheck
    bots: BotsCheck
    redis: RedisCheck | None = None  # only when BOTSERVER_REDIS_URL is set


class SystemStatus(BaseModel):
    status: Literal["healthy", "degraded"]
    version: str
    uptime_seconds: float
    checks: Checks


@router.get("/system/status", response_model=SystemStatus, response_model_exclude_none=True)
async def status(_: AdminUser, services: ServicesDep) -> SystemStatus:
    """Health of every dependency; `degraded` (still 200) when any check fails."""
    return SystemStatus.model_validate(await system_status(services))


def _wants_prometheus(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "prometheus"
    return "text/plain" in request.headers.get("accept", "")


class RequestCount(BaseModel):
    route: str
    method: str
    status: int
    count: int


class MetricsView(BaseModel):
    requests_total: int
    requests: list[RequestCount]
    latency: dict[str, dict[str, float | int | None]]
    open_sockets: int
    messages: dict[str, int]
    rate_limited: dict[str, int]


@router.get(
    "/system/metrics",
    response_model=MetricsView,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "JSON by default; Prometheus text for text/plain or format=prometheus.",
        }
    },
)
async def metrics(
    request: Request,
    _: AdminUser,
    services: ServicesDep,
    format: Annotated[Literal["json", "prometheus"] | None, Query()] = None,
) -> Response:
    """Traffic, latency percentiles, sockets, messages and refusals; Prometheus text on request."""
    if _wants_prometheus(request, format):
        return Response(prometheus_text(services.metrics), media_type=PROMETHEUS_CONTENT_TYPE)
    return JSONResponse(metrics_snapshot(services.metrics))


@router.get("/users", response_model=UserList)
async def list_users(
    _: AdminUser, services: ServicesDep, limit: Limit = 50, offset: Offset = 0
) -> UserList:
    """Every user with their roles, oldest first."""
    users, total = await services.users.list(limit, offset)
    return UserList(users=[_user(user) for user in users], total=total)


@router.put("/users/{user_id}/role", response_model=UserOut, responses=error_responses(404, 409))
async def set_role(
    user_id: str, body: RoleChange, principal: AdminUser, services: ServicesDep
) -> UserOut:
    """Make `role` the user's only role; the last administrator keeps theirs."""
    user = await admin_actions.change_role(services, principal, user_id, body.role)
    return _user(user)


@router.get("/bots", response_model=BotList)
async def list_bots(_: AdminUser, services: ServicesDep) -> BotList:
    """Every bot package, with its load error when it is offline."""
    return _bots(await services.bots.list_all())


@router.post("/bots/reload", response_model=BotList)
async def reload_bots(principal: AdminUser, services: ServicesDep) -> BotList:
    """Read the bots folder again and answer every bot's new state."""
    return _bots(await admin_actions.reload_bots(services, principal))


@router.get("/audit", response_model=AuditList)
async def audit(
    _: AdminUser,
    services: ServicesDep,
    limit: Limit = 50,
    offset: Offset = 0,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    user_id: Annotated[str | None, Query(max_length=48)] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601; events at or after")] = None,
) -> AuditList:
    """Security and administration events, newest first."""
    events, total = await admin_actions.audit_page(
        services, limit, offset, kind=kind, user_id=user_id, since=utc(since) if since else None
    )
    return AuditList(
        events=[
            AuditEventOut(
                id=event.id,
                kind=event.kind,
                user_id=event.user_id,
                actor_id=event.actor_id,
                ip=event.ip,
                details=dict(event.details or {}),
                created_at=isoformat(event.created_at),
            )
            for event in events
        ],
        total=total,
    )
