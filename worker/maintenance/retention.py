"""Retention: expired calls leave in short batches, expired months by detaching partitions.

What expires, and what a run does about each table, is decided by ``retention_rules.decide``
from a snapshot of the catalog and ``archived_partitions``; the dry run (``plan_retention``)
shows those decisions and a run (``enforce_retention``) acts on them. A run does, in this order
(``docs/maintenance.md``):

1. completes any detach an earlier run left pending (``DETACH ... FINALIZE``);
2. deletes expired calls in batches, one short transaction each: the rows of the batch's calls
   in partitions that are *kept*, then the ``calls`` rows, whose unpartitioned children go by
   ``ON DELETE CASCADE``. A call and all its reachable rows go together or not at all;
3. detaches each expired partition concurrently and moves it into the ``archive`` schema — only
   once no call that could own a row in it remains, so a run cut short by its time budget, or a
   late call for an old month, never leaves a call without its timeline;
4. exports archived partitions when ``CALLSTORE_RETENTION_EXPORT_DIR`` is set;
5. drops archived partitions whose grace period is over, after verifying their export.

Each step after the first depends on what the one before left, so the run takes a new snapshot
and decides again before it. Each step is idempotent, so a run killed anywhere is finished by
the next one.

The statements of steps 2, 3 and 5 (a batch of deletes, recording a detach, archiving a detached
partition, dropping an archived one) are SQL functions of revision 0007 that seed 001's
``cleanup_old_partitions()`` and ``drop_old_partitions()`` run too; this module orchestrates what
a function cannot: ``DETACH ... CONCURRENTLY``, one short transaction per step, the time budget,
exports and their verification.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from models.enums import ArchiveStatus
from worker.db import maintenance_connection, translate_database_errors
from worker.errors import ConcurrencyConflict, ExportMismatch, MaintenanceIncomplete
from worker.jobs import JobName, Progress, Skipped, exclusive_job
from worker.log import get_logger
from worker.maintenance import archive, expiry
from worker.maintenance.partitions import (
    ARCHIVE_SCHEMA,
    Partition,
    archive_names,
    detach_concurrently,
    detached_tables,
    estimated_rows,
    finalize_detach,
    list_partitions,
    move_to_archive,
)
from worker.maintenance.retention_rules import (
    Cutoff,
    Decisions,
    DropStep,
    ExportStep,
    RetentionPolicy,
    Snapshot,
    calls_hold_back,
    decide,
)
from worker.settings import Settings

log = get_logger("callstore.retention")

#: A batch waits at most this long for a row lock (a finalize rewriting an expired call);
#: waiting stalls only retention, never the ingest path.
BATCH_LOCK_TIMEOUT = "30s"


# -- the state decisions are made from -------------------------------------------------------


def snapshot(
    conn: psycopg.Connection[Any], *, now: datetime, policy: RetentionPolicy, after_deletes: bool
) -> Snapshot:
    """The state a run decides from. Before the run's deletes (``after_deletes=False``, as for
    the dry run) the calls it leaves are those not expired; after them, every call left."""
    cut = expiry.retention_cutoff(conn, now=now, retention_days=policy.retention_days)
    since = None if after_deletes or cut is None else cut.calls_before
    return Snapshot(
        now=now,
        policy=policy,
        cutoff=cut,
        drop_archived_before=expiry.drop_due_before(conn, now=now, grace_days=policy.grace_days),
        attached=list_partitions(conn),
        detached=detached_tables(conn),
        records=archive.records(conn, statuses=[ArchiveStatus.DETACHING, ArchiveStatus.ARCHIVED]),
        archive_names=archive_names(conn),
        held_from=expiry.months_held_from(conn, since=since),
    )


# -- what a run would do ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedPartition:
    table: str
    name: str
    month: date
    estimated_rows: int


@dataclass(slots=True)
class RetentionPlan:
    """What a run at ``now`` would do: ``callstore retention run --dry-run`` prints this."""

    now: datetime
    policy: RetentionPolicy
    cutoff: Cutoff | None
    #: Archived partitions archived at or before this instant are past their grace period.
    drop_archived_before: datetime
    finalize: list[str] = field(default_factory=list)
    calls_by_source: dict[str, int] = field(default_factory=dict)
    archive: list[PlannedPartition] = field(default_factory=list)
    export: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(self.calls_by_source.values())


def plan_retention(
    conn: psycopg.Connection[Any], *, now: datetime, policy: RetentionPolicy
) -> RetentionPlan:
    """What ``enforce_retention`` would do at ``now`` if its deletes all went through,
    changing nothing."""
    state = snapshot(conn, now=now, policy=policy, after_deletes=False)
    cut = state.cutoff
    plan = RetentionPlan(
        now=now, policy=policy, cutoff=cut, drop_archived_before=state.drop_archived_before
    )
    if cut is None:
        return plan
    decided = decide(state)
    plan.finalize = [p.name for p in decided.finalize]
    schema = _current_schema(conn)
    plan.archive = [
        PlannedPartition(
            step.partition.table,
            step.partition.name,
            step.month,
            estimated_rows(conn, step.partition.name, schema=schema),
        )
        for step in decided.archive
    ]
    plan.export = [str(step.path) for step in decided.export]
    plan.drop = [step.name for step in decided.drop]
    plan.left_alone = list(decided.left_alone)
    rows_by_source = conn.execute(
        "SELECT source, count(*) FROM calls WHERE started_at < %s GROUP BY source ORDER BY source",
        (cut.calls_before,),
    ).fetchall()
    plan.calls_by_source = {source: int(count) for source, count in rows_by_source}
    return plan


def _current_schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    return str(row[0])


# -- doing it --------------------------------------------------------------------------------


@dataclass(slots=True)
class RetentionReport:
    """What a run did. ``complete`` is False when the time budget ended it early; ``errors``
    lists steps that failed and will be retried by the next run."""

    now: datetime
    cutoff: Cutoff | None
    finalized: list[str] = field(default_factory=list)
    calls_deleted: int = 0
    timeline_rows_deleted: int = 0
    batches: int = 0
    archived: list[str] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    kept_back: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    complete: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "cutoff": self.cutoff.calls_before.isoformat() if self.cutoff else None,
            "keep_from": self.cutoff.keep_from.isoformat() if self.cutoff else None,
            "finalized": len(self.finalized),
            "calls_deleted": self.calls_deleted,
            "timeline_rows_deleted": self.timeline_rows_deleted,
            "batches": self.batches,
            "archived": len(self.archived),
            "exported": len(self.exported),
            "dropped": len(self.dropped),
            "missing": len(self.missing),
            "kept_back": len(self.kept_back),
            "errors": len(self.errors),
            "complete": self.complete,
        }

    def incomplete(self) -> MaintenanceIncomplete | None:
        """The steps that failed, as the error a run that had them ends with."""
        return MaintenanceIncomplete("; ".join(self.errors)) if self.errors else None


class _Budget:
    def __init__(self, seconds: float | None) -> None:
        self._deadline = None if seconds is None else time.monotonic() + seconds

    @property
    def spent(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline


def delete_call_batch(
    conn: psycopg.Connection[Any], *, before: datetime, keep_from: date, limit: int
) -> tuple[int, int]:
    """Delete up to ``limit`` calls that started before ``before``, in one transaction, with
    all their rows: timeline rows in the months from ``keep_from`` on (older ones leave with
    their partition), unpartitioned children by cascade. Returns ``(calls, timeline rows)``.

    The statement is ``callstore_delete_expired_calls``, which ``cleanup_old_partitions()``
    runs too. Rows locked by a concurrent finalize are skipped, not waited for: the next batch
    or the next run takes them.
    """
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(BATCH_LOCK_TIMEOUT))
        row = conn.execute(
            "SELECT deleted_calls, deleted_rows FROM callstore_delete_expired_calls(%s, %s, %s)",
            (before, keep_from, limit),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def preview_retention(settings: Settings, *, now: datetime) -> RetentionPlan:
    """What the ``enforce_retention`` job would do at ``now``; without its lock, as it changes
    nothing."""
    with maintenance_connection(settings) as conn:
        return plan_retention(conn, now=now, policy=RetentionPolicy.from_settings(settings))


def run_retention(
    settings: Settings,
    *,
    now: datetime,
    progress: Progress | None = None,
    budget_seconds: float | None = None,
) -> RetentionReport | Skipped:
    """The ``enforce_retention`` job at ``now``: under its lock, on a connection of its own.

    A run whose report has errors is recorded as failed (the next run retries those steps);
    the report is returned all the same.
    """
    with exclusive_job(settings, JobName.ENFORCE_RETENTION) as job:
        if job is None:
            return Skipped(JobName.ENFORCE_RETENTION)
        with maintenance_connection(settings) as conn:
            report = enforce_retention(
                conn,
                now=now,
                policy=RetentionPolicy.from_settings(settings),
                progress=progress,
                budget_seconds=budget_seconds,
            )
        job.details.update(report.as_dict())
        if (incomplete := report.incomplete()) is not None:
            job.fail(incomplete)
    return report


def enforce_retention(
    conn: psycopg.Connection[Any],
    *,
    now: datetime,
    policy: RetentionPolicy,
    progress: Progress | None = None,
    budget_seconds: float | None = None,
) -> RetentionReport:
    """Apply ``policy`` at ``now`` (see the module docstring for the steps and their order).

    ``conn`` must be in autocommit mode (``DETACH ... CONCURRENTLY`` runs outside a transaction
    block); each step opens its own short transaction. ``budget_seconds`` bounds the deleting
    and detaching; what is left is done by the next run.
    """
    if not conn.autocommit:
        raise ValueError("enforce_retention needs an autocommit connection")
    cut = expiry.retention_cutoff(conn, now=now, retention_days=policy.retention_days)
    report = RetentionReport(now=now, cutoff=cut)
    if cut is None:
        return report
    budget = _Budget(budget_seconds)
    notify = progress or _ignore

    def decided(*, after_deletes: bool = True) -> Decisions:
        return decide(snapshot(conn, now=now, policy=policy, after_deletes=after_deletes))

    _finish_pending_detaches(conn, decided(after_deletes=False).finalize, report)
    _delete_expired_calls(conn, cut, policy, report, notify, budget)
    _archive_expired(conn, decided(), now, report, notify, budget)
    _export_archived(conn, decided().export, now, report)
    _drop_due(conn, decided().drop, now, report, notify)
    log.info("retention run", action="retention", **report.as_dict())
    return report


def _ignore(**_: Any) -> None:
    return None


def _finish_pending_detaches(
    conn: psycopg.Connection[Any], pending: tuple[Partition, ...], report: RetentionReport
) -> None:
    for partition in pending:
        try:
            with translate_database_errors():
                finalize_detach(conn, partition)
        except ConcurrencyConflict as error:
            report.errors.append(f"finalize detach of {partition.name}: {error}")
            continue
        log.info("finalized interrupted detach", action="retention", partition=partition.name)
        report.finalized.append(partition.name)


def _delete_expired_calls(
    conn: psycopg.Connection[Any],
    cut: Cutoff,
    policy: RetentionPolicy,
    report: RetentionReport,
    notify: Progress,
    budget: _Budget,
) -> None:
    while True:
        if budget.spent:
            report.complete = False
            return
        calls, rows = delete_call_batch(
            conn, before=cut.calls_before, keep_from=cut.keep_from, limit=policy.batch_size
        )
        if calls == 0:
            return
        report.batches += 1
        report.calls_deleted += calls
        report.timeline_rows_deleted += rows
        notify(phase="delete", calls_deleted=report.calls_deleted, batches=report.batches)


def _archive_expired(
    conn: psycopg.Connection[Any],
    decided: Decisions,
    now: datetime,
    report: RetentionReport,
    notify: Progress,
    budget: _Budget,
) -> None:
    report.kept_back.extend(decided.left_alone)
    for step in decided.archive:
        partition = step.partition
        if step.after_finalize:  # its finalize failed just now (reported): the next run
            continue
        if step.resumed:
            _move(conn, partition, now, report)
            continue
        if budget.spent:
            report.complete = False
            return
        # Asked again right before the detach: a late call for an old month may have come in.
        if (note := calls_hold_back(partition, expiry.months_held_from(conn))) is not None:
            report.kept_back.append(note)
            continue
        with conn.transaction():
            archive.record_detach(conn, partition, now=now)
        try:
            with translate_database_errors():
                detach_concurrently(conn, partition)
        except ConcurrencyConflict as error:
            # Left pending detach at worst: the next run finalizes it.
            archive.note_detach_error(conn, partition.name, str(error))
            report.errors.append(f"detach of {partition.name}: {error}")
            continue
        _move(conn, partition, now, report)
        notify(phase="archive", archived=len(report.archived))


def _move(
    conn: psycopg.Connection[Any], partition: Partition, now: datetime, report: RetentionReport
) -> None:
    with conn.transaction():
        archive_name = move_to_archive(conn, partition.name, now=now)
    rows = estimated_rows(conn, archive_name, schema=ARCHIVE_SCHEMA)
    log.info(
        "partition archived",
        action="retention",
        partition=partition.name,
        archived_as=f"{ARCHIVE_SCHEMA}.{archive_name}",
        estimated_rows=rows,
    )
    report.archived.append(f"{ARCHIVE_SCHEMA}.{archive_name}")


def _export_archived(
    conn: psycopg.Connection[Any],
    steps: tuple[ExportStep, ...],
    now: datetime,
    report: RetentionReport,
) -> None:
    for step in steps:
        record = step.record
        if record is None:  # not archived by this run after all: the next run
            continue
        try:
            path = archive.export(conn, record, path=step.path, now=now)
        except OSError as error:
            archive.note_error(conn, record.id, f"export failed: {error}")
            report.errors.append(f"export of {record.archive_name}: {error}")
            continue
        log.info(
            "partition exported", action="retention", partition=record.archive_name, path=str(path)
        )
        report.exported.append(str(path))


def _drop_due(
    conn: psycopg.Connection[Any],
    steps: tuple[DropStep, ...],
    now: datetime,
    report: RetentionReport,
    notify: Progress,
) -> None:
    for step in steps:
        record, name = step.record, step.name
        if record is None:  # not archived by this run after all: the next run
            continue
        if step.after_export:  # its export failed just now (reported)
            report.kept_back.append(f"{name}: not exported yet, so not dropped")
            continue
        if record.export_path is not None:
            try:
                archive.verify(conn, record, now=now)
            except ExportMismatch as error:
                archive.note_error(conn, record.id, str(error))
                log.error(
                    "export verification failed",
                    action="retention",
                    partition=name,
                    error=str(error),
                )
                report.errors.append(f"{name} kept: {error}")
                continue
        with conn.transaction():
            dropped = drop_archived_table(conn, record, now=now)
        (report.dropped if dropped else report.missing).append(name)
        notify(phase="drop", dropped=len(report.dropped))
        log.info(
            "archived partition dropped" if dropped else "archived partition missing",
            action="retention",
            partition=name,
        )


def drop_archived_table(
    conn: psycopg.Connection[Any], record: archive.ArchiveRecord, *, now: datetime
) -> bool:
    """Drop ``record``'s table and mark the record (``callstore_drop_archived``, which
    ``drop_old_partitions()`` calls too), in the caller's transaction; False when the table
    was no longer in the archive."""
    row = conn.execute("SELECT callstore_drop_archived(%s, %s)", (record.id, now)).fetchone()
    assert row is not None
    return bool(row[0])
