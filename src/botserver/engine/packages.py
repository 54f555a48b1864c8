"""Loading bot packages (``NAME.gbai`` folders) from disk.

Layout of one package::

    NAME.gbai/
      NAME.gbot/config.csv        name,value rows (optional header row)
      NAME.gbdialog/*.bas         dialogs; the entry dialog defaults to start.bas

Loading never raises for a broken package: the package is returned with
``error`` set (e.g. ``"start.bas:7: Expected END IF"``) and no dialogs, so
one bad bot cannot keep the others from starting.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from .basic import BasicSyntaxError, Program, compile_source

logger = logging.getLogger(__name__)

_TRUE = frozenset({"true", "yes", "1", "on", "sim"})
_FALSE = frozenset({"false", "no", "0", "off", "não", "nao"})


@dataclass
class BotPackage:
    """One bot as found on disk; ``error`` is set when it cannot run."""

    name: str
    path: Path
    description: str = ""
    public: bool = True
    groups: list[str] = field(default_factory=list)
    session_timeout_minutes: int | None = None
    entry_dialog: str = "start"
    params: dict[str, str] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    dialogs: dict[str, Program] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def entry(self) -> Program | None:
        return self.dialogs.get(self.entry_dialog)


class PackageError(Exception):
    """A problem with a package's files (not raised out of this module)."""


def read_config(path: Path) -> dict[str, str]:
    """Read ``config.csv``: ``name,value`` rows; the header row is optional."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PackageError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise PackageError(f"{path.name}: not UTF-8 text") from exc
    config: dict[str, str] = {}
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as exc:
        raise PackageError(f"{path.name}: {exc}") from exc
    for number, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise PackageError(f"{path.name}:{number}: expected name,value")
        name, value = row[0].strip(), ",".join(row[1:]).strip()
        if number == 1 and name.lower() == "name" and value.lower() == "value":
            continue
        if not name:
            raise PackageError(f"{path.name}:{number}: empty name")
        config[name] = value
    return config


def _parse_bool(value: str, key: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise PackageError(f"config.csv: {key} must be true or false, not {value!r}")


def _apply_config(package: BotPackage, config: dict[str, str]) -> None:
    lowered = {key.lower(): value for key, value in config.items()}
    package.config = config
    package.description = lowered.get("description", "")
    if "public" in lowered:
        package.public = _parse_bool(lowered["public"], "public")
    groups = lowered.get("groups", "")
    package.groups = [group.strip() for group in re.split(r"[,;]", groups) if group.strip()]
    timeout = lowered.get("session-timeout", "").strip()
    if timeout:
        try:
            package.session_timeout_minutes = int(timeout)
        except ValueError:
            raise PackageError(
                f"config.csv: session-timeout must be a whole number of minutes, not {timeout!r}"
            ) from None
        if package.session_timeout_minutes <= 0:
            raise PackageError("config.csv: session-timeout must be positive")
    start = lowered.get("start-dialog", "").strip()
    if start:
        package.entry_dialog = start.lower().removesuffix(".bas")
    package.params = {
        key[len("param-") :]: value
        for key, value in lowered.items()
        if key.startswith("param-") and len(key) > len("param-")
    }


def _load_dialogs(folder: Path) -> dict[str, Program]:
    dialogs: dict[str, Program] = {}
    for path in sorted(folder.glob("*.bas")):
        try:
            source = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise PackageError(f"{path.name}: cannot read ({exc})") from exc
        try:
            dialogs[path.stem.lower()] = compile_source(source, path.name)
        except BasicSyntaxError as exc:
            raise PackageError(str(exc)) from exc
    return dialogs


def load_package(path: Path) -> BotPackage:
    """Load one ``NAME.gbai`` folder; problems end up in ``error``."""
    name = path.name.removesuffix(".gbai")
    package = BotPackage(name=name, path=path)
    try:
        if not path.is_dir():
            raise PackageError(f"{path.name} is not a folder")
        config_path = path / f"{name}.gbot" / "config.csv"
        if config_path.exists():
            _apply_config(package, read_config(config_path))
        dialog_dir = path / f"{name}.gbdialog"
        dialogs = _load_dialogs(dialog_dir) if dialog_dir.is_dir() else {}
        if package.entry_dialog not in dialogs:
            raise PackageError(f"{package.entry_dialog}.bas: dialog not found in {dialog_dir.name}")
        package.dialogs = dialogs
    except PackageError as exc:
        package.dialogs = {}
        package.error = str(exc)
        logger.warning("bot package %s failed to load: %s", name, package.error)
    except Exception as exc:  # one broken bot must never stop the others
        logger.exception("bot package %s failed to load", name)
        package.dialogs = {}
        package.error = f"{path.name}: cannot load ({type(exc).__name__}: {exc})"
    return package


def load_packages(bots_dir: Path) -> list[BotPackage]:
    """Load every ``*.gbai`` folder in ``bots_dir`` (sorted by name)."""
    if not bots_dir.is_dir():
        logger.warning("bots folder %s does not exist", bots_dir)
        return []
    return [load_package(path) for path in sorted(bots_dir.glob("*.gbai")) if path.is_dir()]
