"""What PostgreSQL's catalog holds: tables, partitions, the archive and the Alembic version, for
tests that assert on the schema rather than on rows (in process and from the acceptance tier)."""

from __future__ import annotations

from typing import Any

import psycopg

from worker.maintenance.partitions import ARCHIVE_SCHEMA


def scalars(conn: psycopg.Connection[Any], query: str, *params: Any) -> set[Any]:
    return {row[0] for row in conn.execute(query, params).fetchall()}


def scalar(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """The first column of the one row ``query`` returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def table_names(conn: psycopg.Connection[Any]) -> set[str]:
    """Ordinary and partitioned tables of the public schema, partitions excluded."""
    return scalars(
        conn,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND NOT relispartition",
    )


def partition_names(conn: psycopg.Connection[Any]) -> set[str]:
    """The attached partitions of the public schema."""
    return scalars(
        conn,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind = 'r' AND relispartition",
    )


def alembic_versions(conn: psycopg.Connection[Any]) -> set[str]:
    return scalars(conn, "SELECT version_num FROM alembic_version")


def archive_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables in the retention archive, by name."""
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
        (ARCHIVE_SCHEMA,),
    ).fetchall()
    return [row[0] for row in rows]
