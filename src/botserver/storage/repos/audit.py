from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from botserver.logs import client_address_var
from botserver.storage.models import AuditEvent


class AuditRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        kind: str,
        when: datetime,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        ip: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Note an event; `ip` defaults to the address of the request being served."""
        self.session.add(
            AuditEvent(
                kind=kind,
                created_at=when,
                user_id=user_id,
                actor_id=actor_id,
                ip=ip if ip is not None else client_address_var.get(),
                details=details or {},
            )
        )

    async def page(
        self,
        limit: int,
        offset: int,
        *,
        kind: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
    ) -> tuple[list[AuditEvent], int]:
        query = select(AuditEvent)
        if kind:
            query = query.where(AuditEvent.kind == kind)
        if user_id:
            query = query.where(AuditEvent.user_id == user_id)
        if since:
            query = query.where(AuditEvent.created_at >= since)
        total = await self.session.scalar(select(func.count()).select_from(query.subquery()))
        result = await self.session.execute(
            query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
        )
        return list(result.scalars()), int(total or 0)
