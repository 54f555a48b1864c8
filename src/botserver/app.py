"""create_app(settings): wiring and lifespan, nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from botserver import __version__
from botserver.api import router as api_router
from botserver.api.web import static_files
from botserver.clock import Clock
from botserver.config import Settings
from botserver.cors import EnvelopeCORSMiddleware
from botserver.errors import ApiError, handle_api_error, install_error_handlers
from botserver.metrics_middleware import MetricsMiddleware
from botserver.middleware import (
    BodySizeLimitMiddleware,
    NulRefusalMiddleware,
    RequestContextMiddleware,
)
from botserver.openapi import install_openapi
from botserver.ratelimit_middleware import RateLimitMiddleware
from botserver.services.container import Services
from botserver.storage.db import DatabaseUnavailable

logger = logging.getLogger(__name__)

EXPOSED_HEADERS = [
    "X-Request-Id",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
]


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.check()
    services = Services.build(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with services.db.startup_lock():
            await services.start()
            created = await services.users.bootstrap_admin(settings.admin_password)
        if created is not None:
            _announce_admin(settings, created.username, created.password, created.generated)
        logger.info("botserver %s is ready at %s.", __version__, settings.public_url)
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="botserver",
        version=__version__,
        description="Hosts General Bots conversational bots behind the General Bots API.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.include_router(api_router)
    app.mount("/static", static_files(), name="static")
    install_openapi(app, counted=lambda path: not services.rate_limiter.is_exempt(path))

    # Added innermost first: metrics wrap everything, then the request id, CORS, rate
    # limits, size and the URL's characters.
    app.add_middleware(NulRefusalMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, services=services)
    if settings.cors_wildcard:
        app.add_middleware(
            EnvelopeCORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-CSRF-Token", "X-Request-Id"],
            expose_headers=EXPOSED_HEADERS,
        )
    else:
        app.add_middleware(
            EnvelopeCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Content-Type", "Authorization", "X-CSRF-Token", "X-Request-Id"],
            expose_headers=EXPOSED_HEADERS,
        )
    app.add_middleware(
        RequestContextMiddleware, trusted_proxies=services.rate_limiter.trusted_proxies
    )
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    return app


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    logger.warning("The database is not answering; answered %s with 503.", request.url.path)
    return await handle_api_error(request, ApiError.unavailable("The database is not answering."))


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory` (used by `botserver serve --reload`)."""
    from botserver.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, json_lines=settings.is_production)
    return create_app(settings)


def _announce_admin(settings: Settings, username: str, password: str, generated: bool) -> None:
    # Printed to the operator's terminal once, never logged: a password in a log
    # file outlives the moment it was needed.
    source = "generated" if generated else "taken from BOTSERVER_ADMIN_PASSWORD"
    shown = password if generated else "(the value of BOTSERVER_ADMIN_PASSWORD)"
    print(
        "\n"
        f"  First start: created the administrator account '{username}'.\n"
        f"  Password ({source}): {shown}\n"
        f"  Sign in at {settings.public_url}/ - this message is shown only once.\n",
        flush=True,
    )
