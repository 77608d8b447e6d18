"""``callstore migrate azure status|run|rejects``: the legacy Azure data, moved in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from worker.azure import checkpoints
from worker.azure.batch import BatchResult, run_batches
from worker.azure.client import storage_from_settings
from worker.azure.reject_reasons import action, kind_of
from worker.azure.sources import SOURCES
from worker.azure.status import SourceStatus, migration_status
from worker.commands.common import console, fail
from worker.db import raw_connection, session_scope
from worker.errors import CallstoreError, MigrationNotConfigured
from worker.jobs import JobName, lock_key
from worker.settings import Settings, get_settings

app = typer.Typer(help="Move legacy data into the call store.", no_args_is_help=True)
azure = typer.Typer(
    help="The legacy Azure Tables and Blob Storage data (seed 000), moved in resumable batches.",
    no_args_is_help=True,
)
app.add_typer(azure, name="azure")

CountLimit = Annotated[
    int,
    typer.Option(
        "--count-limit", min=1, help="Stop counting what is left of a source at this many."
    ),
]


def _wide() -> Console:
    """The console for tables: a terminal gets what fits, a pipe or a file the whole width."""
    return console if console.is_terminal else Console(width=160)


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _status(settings: Settings, cap: int) -> list[SourceStatus]:
    try:
        with storage_from_settings(settings) as storage, session_scope() as session:
            return migration_status(storage, raw_connection(session), cap=cap)
    except MigrationNotConfigured as error:
        fail(str(error), code=2)


@azure.command("status")
def status(count_limit: CountLimit = 100_000) -> None:
    """Per source: read, migrated, rejected, left, watermark, lag, rate and ETA."""
    settings = get_settings()
    rows = _status(settings, count_limit)
    table = Table(
        "source", "scanned", "migrated", "rejected", "left", "watermark", "lag", "rate/s", "ETA",
        "state",
    )  # fmt: skip
    for row in rows:
        left = f"{row.left}+" if row.left_capped else str(row.left)
        state = (
            "caught up"
            if row.caught_up and row.left == 0
            else ("pass open" if row.pass_open else ("new records" if row.left else "pending"))
        )
        table.add_row(
            row.source,
            str(row.scanned),
            str(row.migrated),
            str(row.open_rejects),
            left,
            row.watermark.isoformat(timespec="seconds") if row.watermark else "-",
            _duration(row.lag),
            f"{row.rate:.0f}" if row.rate else "-",
            _duration(row.eta),
            state,
        )
    _wide().print(table)
    remaining = sum(row.left for row in rows)
    done = all(row.caught_up for row in rows) and remaining == 0
    console.print(
        f"{remaining} record(s) left; {sum(r.open_rejects for r in rows)} rejected"
        f" (callstore migrate azure rejects); " + ("caught up" if done else "not caught up"),
        highlight=False,
    )


@azure.command("run")
def run(
    until_done: Annotated[
        bool,
        typer.Option("--until-done", help="Run batches until every source is caught up."),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            min=1,
            max=10_000,
            help="Records per batch (default: CALLSTORE_MIGRATION_BATCH_SIZE).",
        ),
    ] = None,
) -> None:
    """Run one batch, or batches until caught up, with a progress bar."""
    settings = get_settings()
    total = sum(row.left for row in _status(settings, 1_000_000)) if until_done else 0
    totals: dict[str, Any] = {"scanned": 0, "migrated": 0, "rejected": 0, "oddities": 0}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("migrating", total=max(total, 1), detail="")

        def on_batch(result: BatchResult) -> None:
            for name in totals:
                totals[name] += getattr(result, name)
            completed = totals["scanned"]
            progress.update(
                bar,
                completed=min(completed, max(total, completed)),
                total=max(total, completed, 1),
                detail=f"migrated {totals['migrated']}, rejected {totals['rejected']}",
            )

        try:
            result = run_batches(
                settings,
                clock=lambda: datetime.now(UTC),
                batch_size=batch_size,
                max_batches=None if until_done else 1,
                on_batch=on_batch,
                log_batches=False,  # the progress bar says what each batch's log line would
            )
        except MigrationNotConfigured as error:
            fail(str(error), code=2)
        except CallstoreError as error:
            fail(f"{error} ({totals['scanned']} records read before it)")
        if result.caught_up:
            progress.update(bar, completed=max(total, totals["scanned"], 1))
    if result.skipped:
        fail("another migration run holds the job lock (beat's migration.run_batch?); try later")
    odd = (
        f" ({totals['oddities']} call(s) kept with oddities: metadata ? 'legacy_oddities')"
        if totals["oddities"]
        else ""
    )
    console.print(
        f"{len(result.batches)} batch(es): {totals['scanned']} read, {totals['migrated']}"
        f" migrated{odd}, {totals['rejected']} rejected; "
        + ("caught up" if result.caught_up else "more to do"),
        highlight=False,
    )


@azure.command("rejects")
def rejects(
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    key: Annotated[str | None, typer.Option(help="Show this record in full.")] = None,
    resolved: Annotated[bool, typer.Option(help="Include rejects resolved since.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 50,
) -> None:
    """Legacy records that could not be migrated: the reason, the raw text, what to do."""
    clauses = ["TRUE" if resolved else "resolved_at IS NULL"]
    params: dict[str, Any] = {"limit": limit}
    if source:
        clauses.append("source = %(source)s")
        params["source"] = source
    if key:
        clauses.append("key = %(key)s")
        params["key"] = key
    query = (
        "SELECT source, key, reason, raw, first_seen_at, last_seen_at, resolved_at"
        " FROM migration_rejects WHERE " + " AND ".join(clauses) + " ORDER BY source, key"
        " LIMIT %(limit)s"
    )
    with session_scope() as session:
        found = raw_connection(session).execute(query, params).fetchall()
    if key:
        if not found:
            fail(f"no reject with key {key!r}")
        for src, k, reason, raw, first, last, done in found:
            kind = kind_of(src, reason)
            console.print(f"source       {src}\nkey          {k}", highlight=False, markup=False)
            console.print(f"reason       {reason}", highlight=False, markup=False)
            console.print(
                f"kind         {kind.name}: {kind.meaning}", highlight=False, markup=False
            )
            console.print(f"what to do   {action(src, reason)}", highlight=False, markup=False)
            console.print(f"first seen   {first.isoformat()}\nlast seen    {last.isoformat()}")
            if done:
                console.print(f"resolved     {done.isoformat()}")
            console.print(raw, highlight=False, markup=False)
        return
    table = Table("source", "key", "kind", "reason", "last seen")
    actions: dict[str, str] = {}
    for src, k, reason, _raw, _first, last, done in found:
        kind = kind_of(src, reason)
        actions.setdefault(f"{kind.name} ({src})", action(src, reason))
        table.add_row(
            src,
            k,
            kind.name,
            reason[:100] + (" (resolved)" if done else ""),
            last.isoformat("T", "seconds"),
        )
    _wide().print(table)
    if actions:
        console.print("What to do:", highlight=False)
        for name, what in actions.items():
            console.print(f"  {name}: {what}", highlight=False, markup=False)


@azure.command("rescan")
def rescan(
    source: Annotated[
        list[str] | None,
        typer.Option(help="Only this source (repeatable); default: every source."),
    ] = None,
) -> None:
    """Read every record of the sources again from the start, at their next pass.

    After an upgrade that migrates records it used to reject (their rejects are then
    resolved); records already stored are written again, which changes nothing."""
    names = [s.name for s in SOURCES]
    chosen = source or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        fail(f"no source {', '.join(unknown)}; the sources are {', '.join(names)}", code=2)
    with session_scope() as session:
        conn = raw_connection(session)
        locked = conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s)", (lock_key(JobName.MIGRATION),)
        ).fetchone()
        if not locked or not locked[0]:
            fail("a migration run holds the job lock (beat's migration.run_batch?); try later")
        changed = checkpoints.rescan(conn, chosen)
    console.print(
        f"{len(changed)} source(s) will be read again from the start at their next pass:"
        f" {', '.join(changed) or 'none (never read yet)'}",
        highlight=False,
    )
