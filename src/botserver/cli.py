"""The `botserver` command: serve, migrate, and operator chores."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError

from botserver.config import ConfigError, Settings, invalid_settings
from botserver.errors import ApiError
from botserver.logs import configure_logging
from botserver.services.container import Services

T = TypeVar("T")

app = typer.Typer(help="botserver: hosts General Bots conversational bots.", no_args_is_help=True)
users_app = typer.Typer(help="Manage local user accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="Issue and revoke login-session tokens.", no_args_is_help=True)
bots_app = typer.Typer(help="Inspect bot packages.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the embedded directory's signing keys.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(bots_app, name="bots")
app.add_typer(keys_app, name="keys")


def _settings() -> Settings:
    try:
        settings = Settings()
        settings.check()
    except ValidationError as exc:
        for line in invalid_settings(exc):
            typer.echo(f"botserver: {line}", err=True)
        raise typer.Exit(2) from exc
    except ConfigError as exc:
        typer.echo(f"botserver: {exc}", err=True)
        raise typer.Exit(2) from exc
    return settings


def _run(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run one chore against the database, migrated first, and close cleanly."""
    settings = _settings()
    configure_logging("WARNING")

    async def main() -> T:
        services = Services.build(settings)
        try:
            async with services.db.startup_lock():
                await services.db.migrate()
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except ApiError as exc:
        typer.echo(f"botserver: {exc.message}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    reload: Annotated[bool, typer.Option(help="Restart when source files change.")] = False,
) -> None:
    """Run the HTTP and WebSocket server."""
    import uvicorn

    settings = _settings()
    configure_logging(settings.log_level, json_lines=settings.is_production)
    uvicorn.run(
        "botserver.app:app_factory",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        reload=reload,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_frame_bytes * 4,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
    )


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest revision."""

    async def work(services: Services) -> None:
        return None

    _run(work)
    typer.echo("Database is up to date.")


@users_app.command("create")
def users_create(
    name: str,
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    password: Annotated[
        str | None, typer.Option(help="Password; omit for a directory-only account.")
    ] = None,
    role: Annotated[str, typer.Option(help="user or admin.")] = "user",
) -> None:
    """Create a local user."""

    async def work(services: Services) -> str:
        user = await services.users.create(name, email=email, password=password, roles=[role])
        return user.id

    user_id = _run(work)
    typer.echo(f"Created user {name} ({user_id}).")


@users_app.command("list")
def users_list() -> None:
    """List local users."""

    async def work(services: Services) -> list[tuple[str, str, str, str]]:
        users, _ = await services.users.list(limit=10_000)
        return [(u.id, u.username, u.email or "-", ",".join(u.roles or [])) for u in users]

    for row in _run(work):
        typer.echo("\t".join(row))


@users_app.command("set-role")
def users_set_role(name: str, role: str) -> None:
    """Give a user the role 'user' or 'admin'."""

    async def work(services: Services) -> None:
        await services.users.set_role(name, role)

    _run(work)
    typer.echo(f"{name} now has the role {role}.")


@tokens_app.command("issue")
def tokens_issue(name: str) -> None:
    """Print a fresh login-session token for NAME (and nothing else)."""

    async def work(services: Services) -> str:
        user = await services.users.get_by_username(name)
        return (await services.login_sessions.issue(user.id)).token

    typer.echo(_run(work))


@tokens_app.command("revoke")
def tokens_revoke(token: str) -> None:
    """Revoke a login-session token."""

    async def work(services: Services) -> bool:
        return await services.login_sessions.revoke(token)

    if not _run(work):
        typer.echo("botserver: no active session has that token.", err=True)
        raise typer.Exit(1)
    typer.echo("Token revoked.")


@bots_app.command("list")
def bots_list() -> None:
    """List the bots known to the database and their status."""

    async def work(services: Services) -> list[tuple[str, str, str, str]]:
        async with services.db.unit() as uow:
            bots = await uow.bots.all()
        return [(b.id, b.name, b.status, b.error or "") for b in bots]

    for row in _run(work):
        typer.echo("\t".join(row).rstrip())


@bots_app.command("reload")
def bots_reload(
    url: Annotated[
        str | None,
        typer.Option(help="Running server to tell; defaults to BOTSERVER_PUBLIC_URL."),
    ] = None,
) -> None:
    """Load the bot packages again and make the running server use them, without a restart."""

    async def work(services: Services) -> tuple[list[tuple[str, str, str]], str]:
        bots = await services.bots.reload()
        rows = [(b.name, b.status, b.error or "") for b in bots]
        return rows, await _tell_server(services, url or services.settings.public_url)

    rows, told = _run(work)
    for row in rows:
        typer.echo("\t".join(row).rstrip())
    typer.echo(told)


async def _tell_server(services: Services, url: str) -> str:
    """Ask a running server to reload, with a one-off admin token revoked right after."""
    import httpx

    users, _ = await services.users.list(limit=10_000)
    admin = next((u for u in users if "admin" in (u.roles or [])), None)
    if admin is None:
        return "No administrator account exists, so no running server was told."
    issued = await services.login_sessions.issue(admin.id)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{url.rstrip('/')}/api/admin/bots/reload",
                headers={"Authorization": f"Bearer {issued.token}"},
            )
        if response.status_code == 200:
            return f"The server at {url} reloaded its bots."
        return f"The server at {url} answered {response.status_code}; it did not reload."
    except httpx.HTTPError:
        return f"No server answered at {url}; it will load the packages when it starts."
    finally:
        await services.login_sessions.revoke(issued.token)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Sign new ID tokens with a fresh key; older keys stay published until retired."""

    async def work(services: Services) -> str:
        return await services.directory.keys.rotate()

    typer.echo(f"New signing key {_run(work)} is active.")


@keys_app.command("retire")
def keys_retire() -> None:
    """Stop publishing the keys that no longer sign (after their ID tokens have expired)."""

    async def work(services: Services) -> list[str]:
        return await services.directory.keys.retire_inactive()

    retired = _run(work)
    typer.echo(f"Retired {len(retired)} signing key(s).")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
