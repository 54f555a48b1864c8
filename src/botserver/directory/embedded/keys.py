"""The embedded provider's RS256 signing keys.

A key is generated on first use and kept in `signing_keys`. Rotation makes a
new key the active one; older keys stay in the JWKS (so ID tokens they signed
still verify) until they are retired.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from botserver.clock import Clock
from botserver.storage.db import Database
from botserver.storage.models import SigningKey

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"


def _new_key() -> tuple[str, RSAKey]:
    kid = secrets.token_urlsafe(12)
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": ALGORITHM})
    return kid, key


class SigningKeys:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._lock = asyncio.Lock()

    async def active(self) -> RSAKey:
        """The key that signs new ID tokens, generated when there is none yet."""
        async with self._lock:
            async with self.db.unit() as uow:
                keys = await uow.directory.published_keys()
            for stored in keys:
                if stored.active:
                    return RSAKey.import_key(stored.private_jwk)
            return await self._create()

    async def rotate(self) -> str:
        """Make a fresh key the active one; the previous keys stay published. Returns its kid."""
        async with self._lock:
            key = await self._create()
        kid = str(key.kid)
        logger.info("Rotated the directory signing key; the new key id is %s.", kid)
        return kid

    async def retire_inactive(self) -> list[str]:
        """Stop publishing every key that no longer signs; tokens they signed stop verifying."""
        async with self.db.unit() as uow:
            return await uow.directory.retire_inactive_keys(self.clock.now())

    async def jwks(self) -> dict[str, Any]:
        await self.active()
        async with self.db.unit() as uow:
            keys = await uow.directory.published_keys()
        public = KeySet([RSAKey.import_key(stored.private_jwk) for stored in keys])
        return dict(public.as_dict(private=False))

    async def _create(self) -> RSAKey:
        kid, key = _new_key()
        async with self.db.unit() as uow:
            await uow.directory.add_key(
                SigningKey(
                    kid=kid,
                    private_jwk=dict(key.as_dict(private=True)),
                    created_at=self.clock.now(),
                    active=True,
                )
            )
            await uow.directory.deactivate_keys(except_kid=kid)
        return key
