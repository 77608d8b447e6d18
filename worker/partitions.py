"""Monthly partitions of the four timeline tables, made ahead of the data.

One plain function makes them (``ensure_partitions``) and every caller uses it: the initial
migration, the beat rotation task, the CLI and the finalize path when a payload carries a month
that has no partition yet. Each partition is created as a plain table and then attached, since
``ATTACH PARTITION`` takes only a SHARE UPDATE EXCLUSIVE lock on the parent while
``CREATE TABLE ... PARTITION OF`` takes ACCESS EXCLUSIVE and would stall concurrent finalizes.

There is no DEFAULT partition (docs/schema.md says why), so a row for a month without a
partition fails loudly instead of hiding; the finalize path makes the month and retries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import sql

from models.base import PARTITIONED_TABLES

#: Serializes partition DDL across processes; taken per transaction, released at commit.
PARTITION_DDL_LOCK_KEY = 0x63616C6C_70617274  # "callpart"

_NAME_PATTERN = re.compile(r"^(?P<table>[a-z_]+)_(?P<year>\d{4})_(?P<month>\d{2})$")


def month_start(day: date | datetime) -> date:
    """The first day of the month containing ``day`` (datetimes are taken in UTC)."""
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date() if day.tzinfo else day.date()
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    """``month`` (a first-of-month) moved by ``count`` months, either way."""
    index = month.year * 12 + (month.month - 1) + count
    return date(index // 12, index % 12 + 1, 1)


def month_range(first: date, last: date) -> list[date]:
    """Every month from ``first`` to ``last``, both included."""
    months = []
    current = month_start(first)
    end = month_start(last)
    while current <= end:
        months.append(current)
        current = add_months(current, 1)
    return months


def partition_name(table: str, month: date) -> str:
    """``call_messages_2026_03``: the name of ``table``'s partition for ``month``."""
    return f"{table}_{month.year:04d}_{month.month:02d}"


def parse_partition_name(name: str) -> tuple[str, date] | None:
    """The (table, month) a partition name stands for, or None for other names."""
    match = _NAME_PATTERN.match(name)
    if match is None or match["table"] not in PARTITIONED_TABLES:
        return None
    month = int(match["month"])
    if not 1 <= month <= 12:
        return None
    return match["table"], date(int(match["year"]), month, 1)


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    month: date | None
    is_default: bool = False

    @property
    def upper(self) -> date | None:
        return add_months(self.month, 1) if self.month else None


def list_partitions(
    conn: psycopg.Connection[Any], tables: Sequence[str] = PARTITIONED_TABLES
) -> list[Partition]:
    """The partitions attached to ``tables`` in the current schema, ordered by table and month."""
    rows = conn.execute(
        """
        SELECT parent.relname, child.relname, child.relpartbound IS NOT NULL
               AND pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT'
          FROM pg_inherits i
          JOIN pg_class parent ON parent.oid = i.inhparent
          JOIN pg_class child ON child.oid = i.inhrelid
          JOIN pg_namespace ns ON ns.oid = parent.relnamespace
         WHERE ns.nspname = current_schema() AND parent.relname = ANY(%s)
        """,
        (list(tables),),
    ).fetchall()
    partitions = []
    for table, name, is_default in rows:
        parsed = parse_partition_name(name)
        month = parsed[1] if parsed and parsed[0] == table else None
        partitions.append(Partition(table, name, month, bool(is_default)))
    return sorted(partitions, key=lambda p: (p.table, p.month or date.min, p.name))


def existing_months(conn: psycopg.Connection[Any]) -> dict[str, set[date]]:
    """For each partitioned table, the months that have a partition."""
    found: dict[str, set[date]] = {table: set() for table in PARTITIONED_TABLES}
    for partition in list_partitions(conn):
        if partition.month is not None:
            found[partition.table].add(partition.month)
    return found


def ensure_partitions(
    conn: psycopg.Connection[Any],
    *,
    months: Iterable[date],
    tables: Sequence[str] = PARTITIONED_TABLES,
) -> list[str]:
    """Make sure each of ``tables`` has a partition for each of ``months``; return those created.

    Idempotent and safe to run from several processes at once (an advisory lock serializes the
    DDL). Runs inside the caller's transaction; the caller commits.
    """
    wanted = sorted({month_start(m) for m in months})
    if not wanted:
        return []
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_DDL_LOCK_KEY,))
    have = existing_months(conn)
    created = []
    for table in tables:
        for month in wanted:
            if month in have[table]:
                continue
            _create_partition(conn, table, month)
            created.append(partition_name(table, month))
    return created


def ensure_horizon(conn: psycopg.Connection[Any], *, today: date, months_ahead: int) -> list[str]:
    """Partitions for the month of ``today`` and ``months_ahead`` months after it."""
    current = month_start(today)
    return ensure_partitions(conn, months=month_range(current, add_months(current, months_ahead)))


def horizon(conn: psycopg.Connection[Any], *, today: date) -> date | None:
    """The last month covered without a gap, from the month of ``today``, on *every* table;
    None when even the current month is missing somewhere."""
    have = existing_months(conn)
    month = month_start(today)
    if not all(month in months for months in have.values()):
        return None
    while all(add_months(month, 1) in months for months in have.values()):
        month = add_months(month, 1)
    return month


def _create_partition(conn: psycopg.Connection[Any], table: str, month: date) -> None:
    name = sql.Identifier(partition_name(table, month))
    parent = sql.Identifier(table)
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {name} (LIKE {parent} INCLUDING DEFAULTS"
            " INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)"
        ).format(name=name, parent=parent)
    )
    conn.execute(
        sql.SQL(
            "ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"
        ).format(
            parent=parent,
            name=name,
            lo=sql.Literal(_bound(month)),
            hi=sql.Literal(_bound(add_months(month, 1))),
        )
    )
