"""HTTP and WebSocket routes: parse, authorise, call a service, answer."""

from fastapi import APIRouter

from botserver.api import admin, auth, batch, groups, health

router = APIRouter()
router.include_router(health.router)
router.include_router(auth.router)
router.include_router(groups.router)
router.include_router(admin.router)
router.include_router(batch.router)
