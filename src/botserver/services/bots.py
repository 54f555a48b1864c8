"""Bot packages: loaded from the bots folder into the `bots` table and kept in memory.

The database row is what the API lists (any instance can answer); the
compiled dialogs live in each process. A package that fails to load is
marked offline with its error and never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from botserver.clock import Clock
from botserver.engine.packages import BotPackage, load_packages
from botserver.storage.db import Database
from botserver.storage.models import Bot, new_id

logger = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"


class BotService:
    def __init__(self, db: Database, clock: Clock, bots_dir: Path) -> None:
        self.db = db
        self.clock = clock
        self.bots_dir = bots_dir
        self._packages: dict[str, BotPackage] = {}  # by bot name
        self._rows: dict[str, Bot] = {}  # by bot id, as of the last reload
        self._reload_lock = asyncio.Lock()

    async def reload(self) -> list[Bot]:
        """Read every package again and bring the `bots` table in line with the folder."""
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
