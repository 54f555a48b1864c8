"""Bot packages: loaded from the bots folder into the `bots` table and kept in memory.

The database row is what the API lists (any instance can answer); the
compiled dialogs live in each process. A package that fails to load is
marked offline with its error and never stops the others.

A reload announces itself on the bus channel `bots:reload`; every other
instance then reloads its own copy, so a reload anywhere takes effect
everywhere (with Redis; an instance that missed the event while Redis was
down picks the change up at its next reload or restart).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path

from botserver.bus import Bus, Event, Subscription
from botserver.clock import Clock
from botserver.engine.packages import BotPackage, load_packages
from botserver.storage.db import Database
from botserver.storage.models import Bot, new_id

logger = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"
RELOAD_CHANNEL = "bots:reload"


class BotService:
    def __init__(self, db: Database, clock: Clock, bots_dir: Path, bus: Bus | None = None) -> None:
        self.db = db
        self.clock = clock
        self.bots_dir = bots_dir
        self.bus = bus
        self.instance_id = secrets.token_hex(8)
        self._packages: dict[str, BotPackage] = {}  # by bot name
        self._rows: dict[str, Bot] = {}  # by bot id, as of the last reload
        self._reload_lock = asyncio.Lock()
        self._subscription: Subscription | None = None
        self._pending: set[asyncio.Task[list[Bot]]] = set()

    def follow_reloads(self) -> None:
        """Reload whenever another instance announces a reload."""
        if self.bus is not None and self._subscription is None:
            self._subscription = self.bus.subscribe(RELOAD_CHANNEL, self._on_reload)

    def stop_following(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        for task in self._pending:
            task.cancel()

    def _on_reload(self, event: Event) -> None:
        if event.get("instance") == self.instance_id:
            return
        logger.info("Another instance reloaded the bot packages; reloading here too.")
        task = asyncio.get_running_loop().create_task(self.reload(announce=False))
        self._pending.add(task)
        task.add_done_callback(self._reload_done)

    def _reload_done(self, task: asyncio.Task[list[Bot]]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("A reload announced by another instance failed: %s", task.exception())

    async def reload(self, *, announce: bool = True) -> list[Bot]:
        """Read every package again and bring the `bots` table in line with the folder.

        With `announce`, every other instance is told to reload as well.
        """
        bots = await self._reload()
        if announce and self.bus is not None:
            await self.bus.publish(
                RELOAD_CHANNEL, {"type": "bots_reload", "instance": self.instance_id}
            )
        return bots

    async def _reload(self) -> list[Bot]:
        async with self._reload_lock:
            packages = await asyncio.to_thread(_load, self.bots_dir)
            now = self.clock.now()
            async with self.db.unit() as uow:
                known = {bot.name: bot for bot in await uow.bots.all()}
                for package in packages:
                    bot = known.pop(package.name, None)
                    if bot is None:
                        bot = await uow.bots.add(
                            Bot(id=new_id("bot"), name=package.name, loaded_at=now)
                        )
                    _apply(bot, package)
                    bot.loaded_at = now
                    if package.error:
                        logger.warning("Bot %s is offline: %s", package.name, package.error)
                for gone in known.values():
                    # The folder was removed: keep the row (sessions refer to it), mark it.
                    gone.status = OFFLINE
                    gone.error = "The package is no longer in the bots folder."
                bots = await uow.bots.all()
            self._packages = {package.name: package for package in packages}
            self._rows = {bot.id: bot for bot in bots}
        logger.info(
            "Loaded %d bot package(s), %d online.",
            len(packages),
            sum(1 for p in packages if not p.error),
        )
        return bots

    async def list_all(self) -> list[Bot]:
        async with self.db.unit() as uow:
            return await uow.bots.all()

    async def get(self, bot_id: str) -> Bot | None:
        """A bot row; bots change only on reload, so this is served from memory."""
        bot = self._rows.get(bot_id)
        if bot is None:
            async with self.db.unit() as uow:
                bot = await uow.bots.get(bot_id)
        return bot

    def package(self, name: str) -> BotPackage | None:
        return self._packages.get(name)

    @staticmethod
    def visible_to(bot: Bot, group_names: set[str], is_admin: bool) -> bool:
        """Public bots for everyone; restricted bots for members of a listed group."""
        if is_admin or (bot.public and not bot.groups):
            return True
        return bool(set(bot.groups or ()) & group_names)


def _load(bots_dir: Path) -> list[BotPackage]:
    if not bots_dir.is_dir():
        logger.warning("The bots folder %s does not exist; no bots are served.", bots_dir)
        return []
    return load_packages(bots_dir)


def _apply(bot: Bot, package: BotPackage) -> None:
    bot.description = package.description
    bot.public = package.public
    bot.groups = list(package.groups)
    bot.session_timeout_minutes = package.session_timeout_minutes
    bot.config = dict(package.config)
    bot.status = OFFLINE if package.error else ONLINE
    bot.error = package.error
