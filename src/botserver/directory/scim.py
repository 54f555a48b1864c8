"""Profile writes to an external directory over SCIM 2.0 (RFC 7644), with scim2-client."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_client.errors import SCIMClientException
from scim2_models import PatchOp, PatchOperation, SCIMException, SearchRequest, User

logger = logging.getLogger(__name__)


class ScimUnavailable(Exception):
    """The SCIM server refused or failed the write."""


class ScimDirectory:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def update_user(
        self, subject: str, username: str, changes: dict[str, str | None]
    ) -> None:
        """Find the directory's user and PATCH the changed attributes.

        The user is found by the issuer's subject: Zitadel's SCIM `id` is the OIDC
        `sub`, other directories keep it in `externalId`. Only when neither matches
        is the local username tried as `userName`, since ours may have a suffix.
        """
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        operations = _operations(changes)
        if not operations:
            return
        try:
            async with httpx2.AsyncClient(
                base_url=self.base_url, headers=headers, timeout=10
            ) as http:
                client = AsyncSCIMClient(http)
                await client.discover()
                lookups = [("id", subject), ("externalId", subject), ("userName", username)]
                for attribute, value in lookups:
                    found: Any = await client.query(
                        User,
                        query_parameters=SearchRequest(filter=f'{attribute} eq "{_quote(value)}"'),
                    )
                    resources = list(getattr(found, "resources", None) or [])
                    if resources:
                        break
                else:
                    raise ScimUnavailable(f"The directory has no user named {username!r}.")
                resource = resources[0]
                patch = PatchOp[type(resource)](operations=operations)  # type: ignore[misc,operator]
                await client.modify(resource, patch)
        except (SCIMClientException, SCIMException, httpx2.HTTPError) as exc:
            logger.warning("The SCIM directory refused a profile update: %s.", type(exc).__name__)
            raise ScimUnavailable("The directory did not accept the change.") from exc


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _operations(changes: dict[str, str | None]) -> list[PatchOperation[Any]]:
    paths = {"first_name": "name.givenName", "last_name": "name.familyName"}
    operations: list[PatchOperation[Any]] = []
    for field, path in paths.items():
        if field in changes:
            value = changes[field]
            if value is None:
                operations.append(PatchOperation(op="remove", path=path))
            else:
                operations.append(PatchOperation(op="replace", path=path, value=value))
    if "email" in changes:
        email = changes["email"]
        if email is None:
            operations.append(PatchOperation(op="remove", path="emails"))
        else:
            operations.append(
                PatchOperation(
                    op="replace", path="emails", value=[{"value": email, "primary": True}]
                )
            )
    return operations
