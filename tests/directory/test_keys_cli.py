"""`botserver keys rotate` and `keys retire`, as separate processes against one database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from botserver.config import Settings
from botserver.services.container import Services


def botserver(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botserver", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_rotate_then_retire(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    env = {**os.environ, "BOTSERVER_DATABASE_URL": url, "BOTSERVER_ENV": "development"}

    services = Services.build(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    try:
        await services.db.migrate()
        old_kid = (await services.directory.keys.active()).kid

        rotated = botserver("keys", "rotate", env=env, cwd=tmp_path)

        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[3]
        published = {key["kid"] for key in (await services.directory.keys.jwks())["keys"]}
        assert published == {old_kid, new_kid}
        assert (await services.directory.keys.active()).kid == new_kid

        retired = botserver("keys", "retire", env=env, cwd=tmp_path)

        assert retired.returncode == 0 and "Retired 1 signing key(s)." in retired.stdout
        assert [key["kid"] for key in (await services.directory.keys.jwks())["keys"]] == [new_kid]
    finally:
        await services.close()
