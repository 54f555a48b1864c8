"""Bot sessions and REST messaging (CLARIFICATIONS §1 and §4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from botserver.api.deps import CurrentUser, Offset, ServicesDep
from botserver.api.fields import RequestModel
from botserver.clock import isoformat
from botserver.errors import error_responses
from botserver.services.conversations import MAX_SEQ
from botserver.storage.models import BotSession

router = APIRouter(prefix="/api", tags=["sessions"])


class CreateSession(RequestModel):
    bot_id: str = Field(min_length=1, max_length=64)


class CreatedSession(BaseModel):
    session_id: str
    bot_id: str
    status: str
    created_at: str
    expires_at: str


class SessionView(BaseModel):
    session_id: str
    user_id: str
    bot_id: str
    status: str
    created_at: str
    expires_at: str
    last_seq: int


class SessionPage(BaseModel):
    sessions: list[SessionView]
    total: int
    limit: int
    offset: int


class Done(BaseModel):
    success: bool
    message: str


class MessageView(BaseModel):
    message_id: str
    session_id: str
    seq: int
    sender: str
    content: str
    suggestions: list[str]
    client_id: str | None
    created_at: str


class PostMessage(RequestModel):
    content: str = Field(min_length=1, max_length=16 * 1024)
    client_id: str | None = Field(default=None, min_length=1, max_length=128)


class PostedMessage(BaseModel):
    message: MessageView
    replies: list[MessageView]
    duplicate: bool


class MessagePage(BaseModel):
    messages: list[MessageView]
    next_after_seq: int
    has_more: bool


def session_view(session: BotSession, services_status: str) -> SessionView:
    return SessionView(
        session_id=session.id,
        user_id=session.user_id,
        bot_id=session.bot_id,
        status=services_status,
        created_at=isoformat(session.created_at),
        expires_at=isoformat(session.expires_at),
        last_seq=session.last_seq,
    )


def status_of(services: ServicesDep, session: BotSession) -> str:
    if session.status == "active" and not services.conversations.is_live(session):
        return "expired"
    return session.status


@router.get("/session", response_model=SessionView, responses=error_responses(401, 404))
async def current_session(principal: CurrentUser, services: ServicesDep) -> SessionView:
    """The caller's most recently active bot session."""
    session = await services.conversations.current_session(principal)
    return session_view(session, status_of(services, session))


@router.post(
    "/session/create",
    response_model=CreatedSession,
    status_code=201,
    responses=error_responses(401, 404, 422, 503),
)
async def create_session(
    body: CreateSession, principal: CurrentUser, services: ServicesDep
) -> CreatedSession:
    """Open a session with a bot; its entry dialog runs at once (read it with resume/history)."""
    session = await services.conversations.create_session(principal, body.bot_id)
    return CreatedSession(
        session_id=session.id,
        bot_id=session.bot_id,
        status="active",
        created_at=isoformat(session.created_at),
        expires_at=isoformat(session.expires_at),
    )


@router.delete("/session/{session_id}", response_model=Done, responses=error_responses(401, 404))
async def end_session(session_id: str, principal: CurrentUser, services: ServicesDep) -> Done:
    """End a bot session (its owner or an admin)."""
    await services.conversations.end_session(principal, session_id)
    return Done(success=True, message="Session terminated")


@router.get("/sessions", response_model=SessionPage, responses=error_responses(401, 422))
async def list_sessions(
    principal: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> SessionPage:
    """The caller's bot sessions, most recently active first."""
    sessions, total = await services.conversations.list_sessions(principal, limit, offset)
    return SessionPage(
        sessions=[session_view(s, status_of(services, s)) for s in sessions],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/session/{session_id}/messages",
    response_model=PostedMessage,
    responses=error_responses(401, 404, 410, 413, 422),
)
async def post_message(
    session_id: str, body: PostMessage, principal: CurrentUser, services: ServicesDep
) -> PostedMessage:
    """Send a message; answers with it and the bot messages produced before the dialog waits."""
    result = await services.conversations.post(
        principal, session_id, body.content, client_id=body.client_id
    )
    return PostedMessage(
        message=MessageView(**result.user_message),
        replies=[MessageView(**reply) for reply in result.replies],
        duplicate=result.duplicate,
    )


@router.get(
    "/session/{session_id}/messages",
    response_model=MessagePage,
    responses=error_responses(401, 404, 422),
)
async def list_messages(
    session_id: str,
    principal: CurrentUser,
    services: ServicesDep,
    after_seq: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """History oldest first; pass `next_after_seq` back as `after_seq` for the next page."""
    messages = await services.conversations.history(principal, session_id, after_seq, limit + 1)
    page = messages[:limit]
    return MessagePage(
        messages=[MessageView(**m) for m in page],
        next_after_seq=page[-1]["seq"] if page else after_seq,
        has_more=len(messages) > limit,
    )
