"""Who is calling: the signed-in user behind a request or socket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    roles: tuple[str, ...]
    login_session_id: str
    expires_at: datetime
    via: str = "bearer"  # "bearer" or "cookie"

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles
