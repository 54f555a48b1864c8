"""HTTP and WebSocket routes: parse, authorise, call a service, answer."""

from fastapi import APIRouter

from botserver.api import admin, auth, batch, bots, groups, health, sessions, users, web, ws
from botserver.directory.embedded import routes as directory_routes

router = APIRouter()
router.include_router(health.router)
router.include_router(auth.router)
router.include_router(bots.router)
router.include_router(sessions.router)
router.include_router(ws.router)
router.include_router(groups.router)
router.include_router(admin.router)
router.include_router(batch.router)
router.include_router(users.router)
router.include_router(directory_routes.router)
router.include_router(web.router)
