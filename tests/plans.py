"""What PostgreSQL plans for a statement: the statements an ORM call sends, captured as they
go to the driver, and the scans of their ``EXPLAIN`` — for tests that prove an index serves a
read (a sequential scan of a big table is what they rule out)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, event


@dataclass(frozen=True)
class Scan:
    node: str
    relation: str | None
    index: str | None


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and their parameters) sent through ``engine`` inside the block."""
    found: list[tuple[str, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        found.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain(conn: Connection, statement: str, parameters: Any = None) -> list[Scan]:
    """Every scan of ``statement``'s plan (as SQLAlchemy sent it, values bound), with the
    parameters it was sent with."""
    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    explained = sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(statement))
    row = driver.execute(explained, parameters).fetchone()
    assert row is not None
    plan = row[0]
    scans: list[Scan] = []

    def walk(node: dict[str, Any]) -> None:
        if "Scan" in node["Node Type"]:
            scans.append(Scan(node["Node Type"], node.get("Relation Name"), node.get("Index Name")))
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan[0]["Plan"])
    return scans


def plan_of(engine: Engine, conn: Connection, read: Callable[[], object]) -> list[Scan]:
    """The scans of the one statement ``read()`` sends through ``engine``."""
    with captured(engine) as found:
        read()
    assert len(found) == 1, [statement for statement, _ in found]
    return explain(conn, *found[0])
