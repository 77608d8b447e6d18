"""Alembic revisions are frozen: none imports the project's own code.

A revision that imported ``models`` or ``worker`` would do on a fresh database whatever that code
does on the day it runs, not what it did when the revision was written. Libraries (SQLAlchemy,
Alembic, pgvector, psycopg) are fine: their behaviour is pinned by ``uv.lock``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VERSIONS = PROJECT_ROOT / "alembic" / "versions"
#: The project's importable top-level packages and modules (``alembic/`` is the library there).
OWN = frozenset({"models", "worker", "tasks", "bench", "tests", "beat_schedule"})


def own_imports(source: str, filename: str = "<revision>") -> list[str]:
    """Each import of the project's own code in ``source`` (anywhere: a function-level import
    runs as surely as a top-level one), as ``line: module``; relative imports count too."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = ["." * node.level + (node.module or "")]
        else:
            continue
        for module in modules:
            if module.startswith(".") or module.split(".", 1)[0] in OWN:
                found.append(f"{node.lineno}: {module}")
    return found


def revisions() -> list[Path]:
    return sorted(VERSIONS.glob("*.py"))


def test_there_are_revisions_to_check() -> None:
    assert len(revisions()) >= 5


@pytest.mark.parametrize("path", revisions(), ids=lambda path: path.name)
def test_a_revision_imports_none_of_the_projects_code(path: Path) -> None:
    assert own_imports(path.read_text(), str(path)) == [], (
        f"{path.name} imports the project's code; inline what it needs as it is today"
    )


def test_the_check_finds_imports_of_the_projects_code() -> None:
    source = (
        "import sqlalchemy as sa\n"
        "from psycopg import sql\n"
        "from models.base import UPDATED_AT_TABLES\n"
        "import worker.settings\n"
        "def upgrade():\n"
        "    from worker.maintenance.partitions import ensure_horizon\n"
        "    from . import helpers\n"
    )
    assert own_imports(source) == [
        "3: models.base",
        "4: worker.settings",
        "6: worker.maintenance.partitions",
        "7: .",
    ]
