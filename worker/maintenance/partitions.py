"""Monthly partitions of the four timeline tables, made ahead of the data.

One plain function makes them (``ensure_partitions``) and every caller uses it: the rotation
(``worker.maintenance.rotation``) that follows ``alembic upgrade`` (``worker.dev.stack.migrate_database``,
``callstore partitions ensure``) and that beat runs, and the finalize path when a payload carries
a month that has no partition yet. The DDL itself is the SQL function
``callstore_ensure_partition`` (revision 0007), which seed 001's ``create_monthly_partitions()``
calls too, so the partitions an operator makes by hand are made exactly as these. Each partition
is created as a plain table and then attached, since ``ATTACH PARTITION`` takes only a SHARE
UPDATE EXCLUSIVE lock on the parent while ``CREATE TABLE ... PARTITION OF`` takes ACCESS
EXCLUSIVE and would stall concurrent finalizes.

There is no DEFAULT partition (docs/schema.md says why), so a row for a month without a
partition fails loudly instead of hiding; the finalize path makes the month and retries.

Retention takes expired months out again (``detach_concurrently``, ``move_to_archive``); both
directions and their locks are described in ``docs/maintenance.md``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import psycopg
from psycopg import sql

from models.base import PARTITIONED_TABLES

#: Where retention keeps detached partitions until their grace period ends (revision 0002).
ARCHIVE_SCHEMA = "archive"

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


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The half-open UTC range ``[lower, upper)`` that ``month``'s partitions hold."""
    lower = datetime.combine(month_start(month), time(0), tzinfo=UTC)
    upper = datetime.combine(add_months(month_start(month), 1), time(0), tzinfo=UTC)
    return lower, upper


def partition_name(table: str, month: date) -> str:
    """``call_messages_2026_03``: the name of ``table``'s partition for ``month``, as the SQL
    function ``callstore_partition_name`` that creates it spells it (a test holds them equal)."""
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


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    month: date | None
    is_default: bool = False
    #: A ``DETACH ... CONCURRENTLY`` was interrupted: no longer used for new rows, not yet
    #: detached (``finalize_detach`` completes it).
    detach_pending: bool = False

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
               AND pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT', i.inhdetachpending
          FROM pg_inherits i
          JOIN pg_class parent ON parent.oid = i.inhparent
          JOIN pg_class child ON child.oid = i.inhrelid
          JOIN pg_namespace ns ON ns.oid = parent.relnamespace
         WHERE ns.nspname = current_schema() AND parent.relname = ANY(%s)
        """,
        (list(tables),),
    ).fetchall()
    partitions = []
    for table, name, is_default, pending in rows:
        parsed = parse_partition_name(name)
        month = parsed[1] if parsed and parsed[0] == table else None
        partitions.append(Partition(table, name, month, bool(is_default), bool(pending)))
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

    Idempotent and safe to run from several processes at once (``callstore_ensure_partition``
    takes an advisory lock that serializes the DDL). Runs inside the caller's transaction; the
    caller commits.
    """
    wanted = sorted({month_start(m) for m in months})
    if not wanted or not tables:
        return []
    rows = conn.execute(
        "SELECT callstore_ensure_partition(t.name, m.month)"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n), unnest(%s::date[]) AS m(month)"
        " ORDER BY t.n, m.month",
        (list(tables), wanted),
    ).fetchall()
    return [name for (name,) in rows if name is not None]


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


# -- status ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionStats:
    """A partition as ``callstore partitions status`` shows it."""

    partition: Partition
    bound: str
    estimated_rows: int


def partition_stats(
    conn: psycopg.Connection[Any], tables: Sequence[str] = PARTITIONED_TABLES
) -> list[PartitionStats]:
    """Each attached partition with its bound and estimated rows (``reltuples``, or the
    statistics collector's live-row count while the table was never analyzed)."""
    rows = conn.execute(
        """
        SELECT child.relname, pg_get_expr(child.relpartbound, child.oid),
               CASE WHEN child.reltuples >= 0 THEN child.reltuples::bigint
                    ELSE coalesce(st.n_live_tup, 0) END
          FROM pg_inherits i
          JOIN pg_class parent ON parent.oid = i.inhparent
          JOIN pg_class child ON child.oid = i.inhrelid
          JOIN pg_namespace ns ON ns.oid = parent.relnamespace
          LEFT JOIN pg_stat_user_tables st ON st.relid = child.oid
         WHERE ns.nspname = current_schema() AND parent.relname = ANY(%s)
        """,
        (list(tables),),
    ).fetchall()
    details = {name: (bound, int(estimate)) for name, bound, estimate in rows}
    return [
        PartitionStats(p, *details[p.name])
        for p in list_partitions(conn, tables)
        if p.name in details
    ]


def count_rows(conn: psycopg.Connection[Any], name: str, *, schema: str | None = None) -> int:
    """The exact number of rows in table ``name`` (a full scan: for small or rare cases)."""
    table = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def estimated_rows(conn: psycopg.Connection[Any], name: str, *, schema: str) -> int:
    """``reltuples`` of ``schema.name`` (or the live-row count if it was never analyzed)."""
    row = conn.execute(
        """
        SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
                    ELSE coalesce(pg_stat_get_live_tuples(c.oid), 0) END
          FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = %s AND c.relname = %s
        """,
        (schema, name),
    ).fetchone()
    return int(row[0]) if row else 0


# -- taking months out -----------------------------------------------------------------------


def detach_concurrently(conn: psycopg.Connection[Any], partition: Partition) -> None:
    """``DETACH PARTITION ... CONCURRENTLY``: SHARE UPDATE EXCLUSIVE on the parent, so inserts
    and reads of other months go on. Needs an autocommit connection (it commits internally);
    if it is interrupted, the partition stays *pending detach* until ``finalize_detach``."""
    if not conn.autocommit:
        raise ValueError("DETACH PARTITION CONCURRENTLY needs an autocommit connection")
    conn.execute(
        sql.SQL("ALTER TABLE {parent} DETACH PARTITION {name} CONCURRENTLY").format(
            parent=sql.Identifier(partition.table), name=sql.Identifier(partition.name)
        )
    )


def finalize_detach(conn: psycopg.Connection[Any], partition: Partition) -> None:
    """Complete a detach that an earlier, interrupted run left pending."""
    if not conn.autocommit:
        raise ValueError("DETACH PARTITION FINALIZE needs an autocommit connection")
    conn.execute(
        sql.SQL("ALTER TABLE {parent} DETACH PARTITION {name} FINALIZE").format(
            parent=sql.Identifier(partition.table), name=sql.Identifier(partition.name)
        )
    )


def detached_tables(conn: psycopg.Connection[Any]) -> list[Partition]:
    """Tables in the current schema named like a monthly partition but attached to nothing:
    what a detach leaves behind until the table is moved into the archive."""
    rows = conn.execute(
        """
        SELECT c.relname
          FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition
        """
    ).fetchall()
    found = []
    for (name,) in rows:
        parsed = parse_partition_name(name)
        if parsed is not None:
            found.append(Partition(parsed[0], name, parsed[1]))
    return sorted(found, key=lambda p: (p.month or date.min, p.table))


def archive_names(conn: psycopg.Connection[Any]) -> frozenset[str]:
    """Every name taken in the archive schema (tables, their indexes, anything)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace"
        " WHERE ns.nspname = %s",
        (ARCHIVE_SCHEMA,),
    ).fetchall()
    return frozenset(row[0] for row in rows)


def free_name(name: str, taken: Collection[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... if ``taken`` has that name."""
    candidate = name
    suffix = 1
    while candidate in taken:
        suffix += 1
        candidate = f"{name}_{suffix}"
    return candidate


def move_to_archive(conn: psycopg.Connection[Any], name: str, *, now: datetime) -> str:
    """Move the detached table ``name`` into the archive schema and mark its record archived at
    ``now`` (``callstore_archive_partition``, which ``cleanup_old_partitions()`` calls too);
    return its name there.

    A month can be archived twice (a late call re-created it after the first archive), so
    the name gets a suffix when the archive already has one (``free_name``'s rule), and its
    indexes are renamed with it (index names are unique per schema). Runs in the caller's
    transaction.
    """
    row = conn.execute("SELECT callstore_archive_partition(%s, %s)", (name, now)).fetchone()
    assert row is not None
    return str(row[0])
