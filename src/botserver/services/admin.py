"""Administrative actions on users and the audit log."""

from __future__ import annotations

from datetime import datetime

from botserver.errors import ApiError
from botserver.services.container import Services
from botserver.services.principal import ADMIN_ROLE, Principal
from botserver.storage.models import AuditEvent, Bot, User
from botserver.storage.unit import UnitOfWork

_PAGE = 500


async def change_role(services: Services, actor: Principal, user_id: str, role: str) -> User:
    """Make `role` the user's only role, keeping at least one administrator."""
    async with services.db.unit() as uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise ApiError.not_found("User")
        demoting = ADMIN_ROLE in (user.roles or []) and role != ADMIN_ROLE
        if demoting and await _count_admins(uow) <= 1:
            raise ApiError.conflict("The last administrator cannot lose the admin role.")
        username = user.username
    return await services.users.set_role(username, role, actor_id=actor.user_id)


async def reload_bots(services: Services, actor: Principal) -> list[Bot]:
    """Read every bot package again; the outcome is audited."""
    bots = await services.bots.reload()
    async with services.db.unit() as uow:
        await uow.audit.record(
            "bots_reloaded",
            services.clock.now(),
            actor_id=actor.user_id,
            details={
                "online": sorted(bot.name for bot in bots if bot.status == "online"),
                "offline": sorted(bot.name for bot in bots if bot.status != "online"),
            },
        )
    return bots


async def audit_page(
    services: Services,
    limit: int,
    offset: int,
    *,
    kind: str | None = None,
    user_id: str | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEvent], int]:
    """Audit events, newest first."""
    async with services.db.unit() as uow:
        return await uow.audit.page(limit, offset, kind=kind, user_id=user_id, since=since)


async def _count_admins(uow: UnitOfWork) -> int:
    # Roles are a JSON list, which SQLite and PostgreSQL query differently;
    # role changes are rare, so reading the users page by page is fine.
    count, offset = 0, 0
    while page := await uow.users.page(_PAGE, offset):
        count += sum(ADMIN_ROLE in (user.roles or []) for user in page)
        offset += _PAGE
    return count
