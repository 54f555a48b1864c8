from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from botserver.storage.db import Database


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    # In WAL mode readers go on while a write commits, instead of waiting for it.
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'botserver.db'}")
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    finally:
        await db.dispose()
