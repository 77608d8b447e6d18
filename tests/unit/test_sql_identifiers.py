"""SQL text is never assembled from strings at run time: identifiers go through
``psycopg.sql.Identifier`` and values are bound parameters (docs/operations.md, "Security")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("worker", "tasks", "models", "alembic", "bench", "tests")
SQL_CALLS = frozenset({"execute", "executemany", "copy", "SQL", "text", "exec_driver_sql"})


def _assembled(node: ast.expr) -> bool:
    """An f-string, ``"..." % x``, ``"..." + x`` or ``"...".format(x)``."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        left = node.left
        return isinstance(left, ast.JoinedStr) or (
            isinstance(left, ast.Constant) and isinstance(left.value, str)
        )
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    )


def offenders(path: Path) -> list[int]:
    """Lines of ``path`` that pass SQL assembled from strings to an SQL-taking call."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else None
        name = name or (node.func.id if isinstance(node.func, ast.Name) else None)
        if name in SQL_CALLS and _assembled(node.args[0]):
            found.append(node.lineno)
    return found


def test_no_sql_is_assembled_from_strings() -> None:
    files = [p for source in SOURCES for p in (ROOT / source).rglob("*.py")]
    assert len(files) > 40
    found = [f"{path.relative_to(ROOT)}:{line}" for path in files for line in offenders(path)]
    assert found == [], "build SQL with psycopg.sql and bind values: " + ", ".join(found)


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(conn, table, n):\n"
        '    conn.execute(f"SELECT count(*) FROM {table}")\n'
        '    conn.execute("SET statement_timeout = %d" % n)\n'
        '    conn.execute("SELECT * FROM {}".format(table))\n'
        '    conn.execute("SELECT %s", (n,))\n'
    )
    assert offenders(sample) == [2, 3, 4]
