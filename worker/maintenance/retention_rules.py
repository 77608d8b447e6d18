"""What retention decides, from a snapshot of the catalog, the archive and the rules, without I/O.

With ``CALLSTORE_RETENTION_DAYS = N`` (0 keeps everything) a call is expired when it started
before ``now - N days`` (the *cutoff*), whatever its source. A month's partitions are expired
when the whole month ends at least ``MAX_CLOCK_SKEW`` (1 h) before the cutoff: a payload's
entries may be stamped up to that long before its call started, so a call that is kept can
never have a row in an expired month. For the same reason a month stays attached while any
remaining call may have rows in it, and an archived partition is dropped once its grace period
is over.

Those rules are SQL functions (revision 0007: ``callstore_retention_cutoff``,
``callstore_months_held_from``, ``callstore_archive_drop_due_before``), because seed 001's
runbook functions (``cleanup_old_partitions()``, ``drop_old_partitions()``) apply them inside
PostgreSQL too; ``worker.maintenance.expiry`` asks them, and the snapshot carries their answers.
So Python and SQL cannot disagree on what expires.

``decide`` is the one place a run's steps are decided from them: the dry run
(``plan_retention``) shows its decisions, and a run (``enforce_retention``) acts on them, so the
two cannot drift apart. The decisions say what a run would do from the snapshot's state if every
step went through. A step that depends on an earlier one (moving a table whose interrupted
detach is to be finished, exporting or dropping a partition the run archives, dropping one it
exports) says so, so a run that decides again after a step failed knows not to take the
dependent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from models.enums import ArchiveStatus
from worker.maintenance.archive import ArchiveRecord, export_path
from worker.maintenance.partitions import ARCHIVE_SCHEMA, Partition, free_name
from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention_days: int
    grace_days: int = 7
    export_dir: Path | None = None
    batch_size: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            retention_days=settings.retention_days,
            grace_days=settings.retention_grace_days,
            export_dir=settings.retention_export_dir,
            batch_size=settings.retention_batch_size,
        )


@dataclass(frozen=True, slots=True)
class Cutoff:
    """Calls that started before ``calls_before`` are expired; so are months before
    ``keep_from`` (the first month whose partitions are kept)."""

    calls_before: datetime
    keep_from: date


def calls_hold_back(partition: Partition, held_from: date | None) -> str | None:
    """Why ``partition`` of an expired month must stay attached while the calls left may have
    rows in ``held_from`` and later months (None: it may go)."""
    assert partition.month is not None
    if held_from is not None and partition.month >= held_from:
        return f"{partition.name}: calls that may own rows in it remain (the next run)"
    return None


# -- the snapshot and the decisions ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a run decides from, read from the database at one moment."""

    now: datetime
    policy: RetentionPolicy
    #: The cutoff at ``now`` (None: retention is off).
    cutoff: Cutoff | None
    #: Archived partitions archived at or before this instant are past their grace period.
    drop_archived_before: datetime
    #: The partitions attached to the timeline tables, those pending detach included.
    attached: Sequence[Partition]
    #: Tables named like a partition and attached to nothing (a detach not yet moved).
    detached: Sequence[Partition]
    #: ``archived_partitions`` records that are ``detaching`` or ``archived``.
    records: Sequence[ArchiveRecord]
    #: Every name taken in the archive schema.
    archive_names: frozenset[str]
    #: The first month the calls the run leaves in place may have rows in (None: no call is
    #: left): partitions of that month and later stay attached.
    held_from: date | None


@dataclass(frozen=True, slots=True)
class ArchiveStep:
    """A partition of an expired ``month`` to move into the archive as ``archive_name``."""

    partition: Partition
    month: date
    archive_name: str
    #: Already detached (or pending detach): only moved, whatever the time budget says.
    resumed: bool
    #: Pending detach: moved only once ``finalize`` has finished the detach.
    after_finalize: bool = False


@dataclass(frozen=True, slots=True)
class ExportStep:
    """An archived partition to export to ``path``; ``record`` is None for one the run is
    still to archive."""

    path: Path
    record: ArchiveRecord | None


@dataclass(frozen=True, slots=True)
class DropStep:
    """An archived partition past its grace period; ``record`` is None for one the run is still
    to archive (a grace period of 0 days)."""

    name: str
    record: ArchiveRecord | None
    #: Not exported yet while exports are on: dropped only once the run has exported it.
    after_export: bool


@dataclass(frozen=True, slots=True)
class Decisions:
    cutoff: Cutoff | None
    #: Partitions pending detach: ``DETACH ... FINALIZE`` comes first (one pending per table).
    finalize: tuple[Partition, ...] = ()
    #: Resumed detaches first, then the expired attached partitions, oldest first.
    archive: tuple[ArchiveStep, ...] = ()
    export: tuple[ExportStep, ...] = ()
    drop: tuple[DropStep, ...] = ()
    #: ``"<name>: <why>"`` for each table a run leaves alone.
    left_alone: tuple[str, ...] = ()


def decide(snapshot: Snapshot) -> Decisions:
    """What a run would do from ``snapshot`` if every step went through."""
    cut = snapshot.cutoff
    if cut is None:
        return Decisions(cut)
    archive, left_alone = _archive_steps(snapshot, cut)
    export, drop = _export_and_drop_steps(snapshot, archive)
    return Decisions(
        cut,
        finalize=tuple(p for p in snapshot.attached if p.detach_pending),
        archive=tuple(archive),
        export=tuple(export),
        drop=tuple(drop),
        left_alone=tuple(left_alone),
    )


def _archive_steps(snapshot: Snapshot, cut: Cutoff) -> tuple[list[ArchiveStep], list[str]]:
    detaching = {r.partition_name for r in snapshot.records if r.status == ArchiveStatus.DETACHING}
    taken = set(snapshot.archive_names)
    steps: list[ArchiveStep] = []
    left_alone: list[str] = []

    def archive(partition: Partition, month: date, *, resumed: bool) -> None:
        name = free_name(partition.name, taken)
        taken.add(name)
        steps.append(ArchiveStep(partition, month, name, resumed, partition.detach_pending))

    # Interrupted detaches are resumed when retention started them and their month is expired.
    pending = [p for p in snapshot.attached if p.detach_pending]
    for partition in sorted([*pending, *snapshot.detached], key=_age):
        if partition.name not in detaching:
            left_alone.append(f"{partition.name}: detached, but not by retention")
        elif partition.month is None or partition.month >= cut.keep_from:
            left_alone.append(f"{partition.name}: detached, but its month is not expired")
        else:
            archive(partition, partition.month, resumed=True)
    expired = [
        p
        for p in snapshot.attached
        if p.month is not None and p.month < cut.keep_from and not p.detach_pending
    ]
    for partition in sorted(expired, key=_age):
        assert partition.month is not None
        if (note := calls_hold_back(partition, snapshot.held_from)) is not None:
            left_alone.append(note)
        else:
            archive(partition, partition.month, resumed=False)
    return steps, left_alone


def _export_and_drop_steps(
    snapshot: Snapshot, archive: list[ArchiveStep]
) -> tuple[list[ExportStep], list[DropStep]]:
    now, export_dir = snapshot.now, snapshot.policy.export_dir
    due_before = snapshot.drop_archived_before
    export: list[ExportStep] = []
    drop: list[DropStep] = []
    for step in archive:  # archived by this run, at ``now``
        if export_dir is not None:
            path = export_path(
                export_dir, step.partition.table, step.partition.name, archived_at=now
            )
            export.append(ExportStep(path, None))
        if now <= due_before:
            drop.append(DropStep(_archived(step.archive_name), None, export_dir is not None))
    for record in snapshot.records:
        if record.status != ArchiveStatus.ARCHIVED:
            continue
        assert record.archive_name is not None
        assert record.archived_at is not None
        unexported = export_dir is not None and record.export_path is None
        if export_dir is not None and unexported:
            path = export_path(
                export_dir,
                record.parent_table,
                record.partition_name,
                archived_at=record.archived_at,
            )
            export.append(ExportStep(path, record))
        if record.archived_at <= due_before:
            drop.append(DropStep(_archived(record.archive_name), record, unexported))
    return export, drop


def _age(partition: Partition) -> tuple[date, str]:
    return partition.month or date.min, partition.table


def _archived(archive_name: str) -> str:
    return f"{ARCHIVE_SCHEMA}.{archive_name}"
