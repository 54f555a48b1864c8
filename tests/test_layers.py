"""The layers stay visible: only `storage/` speaks SQLAlchemy."""

from __future__ import annotations

import ast
from pathlib import Path

import botserver

PACKAGE = Path(botserver.__file__).parent
STORAGE_ONLY = {"sqlalchemy", "alembic"}


def imported_modules(source: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports, with its line, wherever the import sits."""
    found = []
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_no_module_outside_storage_imports_sqlalchemy() -> None:
    offenders = []
    for source in sorted(PACKAGE.rglob("*.py")):
        relative = source.relative_to(PACKAGE)
        if relative.parts[0] == "storage":
            continue
        for line, module in imported_modules(source):
            if module.split(".")[0] in STORAGE_ONLY:
                offenders.append(f"{relative}:{line} imports {module}")
    assert offenders == []


def test_the_walk_sees_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sqlalchemy.orm import Session\n"
        "def f():\n"
        "    import sqlalchemy.exc\n"
    )
    assert [module for _, module in imported_modules(sample)] == [
        "typing",
        "sqlalchemy.orm",
        "sqlalchemy.exc",
    ]
