"""``callstore partitions status|ensure``: the monthly partitions and their horizon."""

from __future__ import annotations

import re
from datetime import date, timedelta

import typer
from rich import box
from rich.table import Table

from models.base import PARTITIONED_TABLES
from models.enums import ArchiveStatus
from worker.commands.common import NowOption, console, fail, parse_now
from worker.db import maintenance_connection
from worker.jobs import Skipped
from worker.maintenance import archive, partitions
from worker.maintenance.rotation import run_rotation
from worker.settings import get_settings

app = typer.Typer(help="Inspect and make the monthly partitions of the timeline tables.")

_RANGE = re.compile(r"FROM \('([^']*)'\) TO \('([^']*)'\)")


def _month(value: date | None) -> str:
    return value.strftime("%Y-%m") if value else "-"


def _bound(text: str) -> tuple[str, str]:
    match = _RANGE.search(text)
    if match is None:
        return text, ""
    return tuple(v.removesuffix(" 00:00:00+00") for v in match.groups())  # type: ignore[return-value]


@app.command("status")
def status(now: NowOption = None) -> None:
    """Per table: partitions, their ranges and estimated rows; the horizon; the archive."""
    settings = get_settings()
    at = parse_now(now)
    today = at.date()
    target = partitions.add_months(partitions.month_start(today), settings.partition_premake_months)
    with maintenance_connection(settings) as conn:
        stats = partitions.partition_stats(conn)
        horizon = partitions.horizon(conn, today=today)
        defaults = {
            s.partition.name: partitions.count_rows(conn, s.partition.name)
            for s in stats
            if s.partition.is_default
        }
        leftovers = partitions.detached_tables(conn)
        archived = archive.records(conn, statuses=[ArchiveStatus.DETACHING, ArchiveStatus.ARCHIVED])

    state = "ok" if horizon is not None and horizon >= target else "SHORT"
    console.print(
        f"as of {at.isoformat(timespec='seconds')}: "
        f"horizon {_month(horizon) if horizon else 'none (current month missing)'}, "
        f"needed up to {_month(target)} ({_month(today)} + "
        f"{settings.partition_premake_months} month(s)): {state}",
        highlight=False,
        soft_wrap=True,
    )
    for table in PARTITIONED_TABLES:
        mine = [s for s in stats if s.partition.table == table]
        grid = Table(
            "partition",
            "from (UTC)",
            "to (UTC)",
            "est. rows",
            "state",
            title=f"{table}: {len(mine)} partition(s)",
            title_justify="left",
            box=box.SIMPLE,
        )
        for item in mine:
            lower, upper = _bound(item.bound)
            flag = "detach pending" if item.partition.detach_pending else "attached"
            if item.partition.is_default:
                flag = "DEFAULT"
            grid.add_row(item.partition.name, lower, upper, f"{item.estimated_rows:,}", flag)
        console.print(grid)
        default = [s.partition.name for s in mine if s.partition.is_default]
        if default:
            for name in default:
                console.print(f"  default partition {name}: {defaults[name]:,} row(s)")
        else:
            console.print("  default partition: none (by design)", highlight=False, soft_wrap=True)
    for leftover in leftovers:
        console.print(f"detached, not archived: {leftover.name}", highlight=False, soft_wrap=True)
    grace = timedelta(days=settings.retention_grace_days)
    if archived:
        console.print(f"archive ({settings.retention_grace_days}-day grace period):")
    for record in archived:
        if record.status == ArchiveStatus.DETACHING:
            console.print(f"  {record.partition_name}: detaching (the next run finishes it)")
            continue
        assert record.archived_at is not None
        drop_after = (record.archived_at + grace).isoformat(timespec="seconds")
        exported = f", exported to {record.export_path}" if record.export_path else ""
        problem = f" — {record.last_error}" if record.last_error else ""
        console.print(
            f"  {partitions.ARCHIVE_SCHEMA}.{record.archive_name}: ~{record.row_estimate or 0:,} "
            f"row(s), archived {record.archived_at.isoformat(timespec='seconds')}, "
            f"dropped after {drop_after}{exported}{problem}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("ensure")
def ensure(now: NowOption = None) -> None:
    """Make the current month and CALLSTORE_PARTITION_PREMAKE_MONTHS ahead (and any month the
    stored data needs) for every partitioned table; idempotent."""
    settings = get_settings()
    at = parse_now(now)
    result = run_rotation(settings, now=at)
    if isinstance(result, Skipped):
        fail("another rotation holds the lock; nothing done")
    for name in result.created:
        console.print(f"created {name}", highlight=False)
    horizon = _month(result.horizon) if result.horizon else "none"
    console.print(
        f"{len(result.created)} partition(s) created; horizon {horizon}, "
        f"needed up to {_month(result.target)} ({'ok' if result.ok else 'SHORT'})",
        highlight=False,
        soft_wrap=True,
    )
    if not result.ok:
        raise typer.Exit(1)
