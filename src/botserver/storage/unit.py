"""A unit of work: one database transaction and the repositories that share it."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from botserver.storage.repos.audit import AuditRepo
from botserver.storage.repos.bots import BotRepo
from botserver.storage.repos.conversations import ConversationRepo
from botserver.storage.repos.groups import GroupRepo
from botserver.storage.repos.login_sessions import LoginSessionRepo
from botserver.storage.repos.memories import MemoryRepo
from botserver.storage.repos.users import UserRepo


class UnitOfWork:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def flush(self) -> None:
        await self.session.flush()

    @cached_property
    def users(self) -> UserRepo:
        return UserRepo(self.session)

    @cached_property
    def login_sessions(self) -> LoginSessionRepo:
        return LoginSessionRepo(self.session)

    @cached_property
    def bots(self) -> BotRepo:
        return BotRepo(self.session)

    @cached_property
    def audit(self) -> AuditRepo:
        return AuditRepo(self.session)

    @cached_property
    def conversations(self) -> ConversationRepo:
        return ConversationRepo(self.session)

    @cached_property
    def memories(self) -> MemoryRepo:
        return MemoryRepo(self.session)

    @cached_property
    def groups(self) -> GroupRepo:
        return GroupRepo(self.session)
