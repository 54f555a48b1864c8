"""HTTP and WebSocket routes: parse, authorise, call a service, answer."""

from fastapi import APIRouter

from botserver.api import auth, health, users
from botserver.directory.embedded import routes as directory_routes

router = APIRouter()
router.include_router(health.router)
router.include_router(auth.router)
router.include_router(users.router)
router.include_router(directory_routes.router)
