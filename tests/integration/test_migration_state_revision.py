"""Revision 0003 (the Azure migration's state) goes down and up again, and matches the models."""

from __future__ import annotations

from typing import Any

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from models.tables import metadata
from tests.conftest import Database
from worker.maintenance.partitions import parse_partition_name
from worker.migrations import downgrade, upgrade

TABLES = ("migration_checkpoints", "migration_rejects")


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE tablename = ANY(%s)", (list(TABLES),)
    ).fetchall()
    return {r[0] for r in rows}


def test_down_to_0001_and_up_again(database: Database, conn: psycopg.Connection[Any]) -> None:
    assert _tables(conn) == set(TABLES)
    downgrade(database.sqlalchemy_url, target="0001")
    assert _tables(conn) == set()
    upgrade(database.sqlalchemy_url)
    assert _tables(conn) == set(TABLES)

    engine = create_engine(database.sqlalchemy_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(
                    connection,
                    opts={"include_name": _include, "compare_type": True},
                ),
                metadata,
            )
    finally:
        engine.dispose()
    assert [d for d in diff if _mentions_migration_state(d)] == []


def _include(name: str | None, type_: str, _parents: Any) -> bool:
    return not (type_ == "table" and name is not None and parse_partition_name(name))


def _mentions_migration_state(diff: Any) -> bool:
    text = repr(diff)
    return any(t in text for t in (*TABLES, "ix_calls_legacy_customer_id"))
