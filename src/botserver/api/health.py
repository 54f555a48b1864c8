from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from botserver.api.deps import ServicesDep
from botserver.clock import isoformat

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    timestamp: str


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database is not answering"}},
)
async def health(services: ServicesDep) -> JSONResponse:
    """Liveness and readiness: healthy when the database answers. No authentication."""
    try:
        await asyncio.wait_for(services.db.ping(), timeout=3)
        status, code = "healthy", 200
    except Exception as exc:
        logger.warning("Health check failed: the database did not answer (%s).", type(exc).__name__)
        status, code = "unhealthy", 503
    body = Health(status=status, timestamp=isoformat(services.clock.now()))
    return JSONResponse(body.model_dump(), status_code=code)
