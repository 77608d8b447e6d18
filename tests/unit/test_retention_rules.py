"""The decisions of a run and the export digest, without a database.

The rules the decisions start from (the cutoff, the months calls hold, the end of the grace
period) are SQL functions; ``tests/integration/test_expiry_rules.py`` tests them. Here a
snapshot carries their answers as literals.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from models.enums import ArchiveStatus
from worker.maintenance.archive import ArchiveRecord, RowDigest, digest_chunks, export_path
from worker.maintenance.partitions import Partition, parse_partition_name, partition_name
from worker.maintenance.retention_rules import (
    Cutoff,
    Decisions,
    RetentionPolicy,
    Snapshot,
    decide,
)


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=30))
def test_digest_ignores_row_order_and_chunking(rows: list[bytes]) -> None:
    stream = b"".join(row + b"\n" for row in rows)
    shuffled = rows[:]
    random.Random(len(rows)).shuffle(shuffled)
    cuts = sorted(random.Random(7).sample(range(len(stream) + 1), min(5, len(stream) + 1)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = digest_chunks([stream])
    assert whole[0] == len(rows)
    assert digest_chunks(chunks) == whole
    assert digest_chunks([b"".join(r + b"\n" for r in shuffled)]) == whole


def test_digest_notices_a_changed_lost_or_added_row() -> None:
    rows = [b"a\t1", b"b\t2", b"c\t3"]
    base = digest_chunks([b"\n".join(rows) + b"\n"])
    assert digest_chunks([b"a\t1\nb\t2\nc\t4\n"]) != base
    assert digest_chunks([b"a\t1\nb\t2\n"]) != base
    assert digest_chunks([b"a\t1\nb\t2\nc\t3\nc\t3\n"]) != base


def test_a_last_row_without_newline_counts() -> None:
    digest = RowDigest()
    digest.feed(b"x\ny")
    assert digest.result()[0] == 2


# -- the decisions of a run ------------------------------------------------------------------

NOW = datetime(2027, 3, 15, 12, tzinfo=UTC)
POLICY = RetentionPolicy(retention_days=365, grace_days=7)
#: The cutoff at NOW after 365 days: calls before 2026-03-15 12:00 and months before March expire.
CUT = Cutoff(datetime(2026, 3, 15, 12, tzinfo=UTC), date(2026, 3, 1))
#: 7 days of grace at NOW.
DROP_BEFORE = datetime(2027, 3, 8, 12, tzinfo=UTC)
TABLES = ("call_messages", "call_metrics")


def _partitions(*months: date, pending: tuple[str, ...] = ()) -> list[Partition]:
    names = [(table, month, partition_name(table, month)) for month in months for table in TABLES]
    return [Partition(t, name, m, detach_pending=name in pending) for t, m, name in names]


def _record(
    name: str,
    status: ArchiveStatus,
    *,
    archived_at: datetime | None = None,
    export_path: str | None = None,
    archive_name: str | None = None,
) -> ArchiveRecord:
    parsed = parse_partition_name(name)
    assert parsed is not None
    return ArchiveRecord(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{archived_at}"),
        parent_table=parsed[0],
        partition_name=name,
        month=parsed[1],
        status=status.value,
        archive_name=archive_name or (name if status == ArchiveStatus.ARCHIVED else None),
        detach_started_at=archived_at or NOW,
        archived_at=archived_at,
        row_estimate=None,
        row_count=None,
        checksum=None,
        export_path=export_path,
        exported_at=None,
        verified_at=None,
        dropped_at=None,
        last_error=None,
    )


def _decide(
    *,
    now: datetime = NOW,
    policy: RetentionPolicy = POLICY,
    cutoff: Cutoff | None = CUT,
    drop_archived_before: datetime = DROP_BEFORE,
    attached: list[Partition] | None = None,
    detached: list[Partition] | None = None,
    records: list[ArchiveRecord] | None = None,
    archive_names: frozenset[str] = frozenset(),
    held_from: date | None = None,
) -> Decisions:
    return decide(
        Snapshot(
            now=now,
            policy=policy,
            cutoff=cutoff,
            drop_archived_before=drop_archived_before,
            attached=attached or [],
            detached=detached or [],
            records=records or [],
            archive_names=archive_names,
            held_from=held_from,
        )
    )


def _archived(decided: Decisions) -> list[str]:
    return [step.archive_name for step in decided.archive]


def test_retention_off_decides_nothing() -> None:
    attached = _partitions(date(2020, 1, 1))
    decided = _decide(policy=RetentionPolicy(retention_days=0), cutoff=None, attached=attached)
    assert decided == Decisions(None)


def test_expired_months_are_archived_oldest_first_and_kept_months_stay() -> None:
    attached = _partitions(date(2026, 3, 1), date(2026, 1, 1), date(2026, 2, 1))
    decided = _decide(attached=attached, held_from=date(2026, 3, 1))
    assert decided.cutoff is not None and decided.cutoff.keep_from == date(2026, 3, 1)
    assert _archived(decided) == [
        "call_messages_2026_01", "call_metrics_2026_01",
        "call_messages_2026_02", "call_metrics_2026_02",
    ]  # fmt: skip
    assert not any(step.resumed for step in decided.archive)
    assert decided.finalize == () and decided.left_alone == ()
    assert decided.export == ()  # exports are off
    assert decided.drop == ()  # grace period: 7 days


def test_a_month_stays_while_a_call_that_may_own_rows_in_it_remains() -> None:
    attached = _partitions(date(2026, 1, 1), date(2026, 2, 1))
    # The calls left may have rows in January (one started 30 minutes into February).
    held = _decide(attached=attached, held_from=date(2026, 1, 1))
    assert _archived(held) == []
    months = ("2026_01", "2026_02")
    assert held.left_alone == tuple(
        f"{table}_{month}: calls that may own rows in it remain (the next run)"
        for month in months
        for table in TABLES
    )
    # They may have rows from February on: January goes, February waits.
    january = _decide(attached=attached, held_from=date(2026, 2, 1))
    assert _archived(january) == ["call_messages_2026_01", "call_metrics_2026_01"]
    assert len(january.left_alone) == 2


def test_interrupted_detaches_are_resumed_only_when_retention_started_them_and_expired() -> None:
    attached = _partitions(date(2026, 1, 1), pending=("call_metrics_2026_01",))
    detached = [
        Partition("call_messages", "call_messages_2025_12", date(2025, 12, 1)),  # by retention
        Partition("call_metrics", "call_metrics_2025_12", date(2025, 12, 1)),  # by hand
        Partition("call_messages", "call_messages_2026_04", date(2026, 4, 1)),  # not expired
    ]
    records = [
        _record(name, ArchiveStatus.DETACHING)
        for name in ("call_messages_2025_12", "call_messages_2026_04", "call_metrics_2026_01")
    ]
    decided = _decide(attached=attached, detached=detached, records=records)
    assert [p.name for p in decided.finalize] == ["call_metrics_2026_01"]
    assert [(s.archive_name, s.resumed, s.after_finalize) for s in decided.archive] == [
        ("call_messages_2025_12", True, False),
        ("call_metrics_2026_01", True, True),  # once its detach is finished
        ("call_messages_2026_01", False, False),
    ]
    assert decided.left_alone == (
        "call_metrics_2025_12: detached, but not by retention",
        "call_messages_2026_04: detached, but its month is not expired",
    )


def test_a_pending_detach_retention_did_not_start_is_finished_but_left_alone() -> None:
    attached = _partitions(date(2026, 1, 1), pending=("call_messages_2026_01",))
    decided = _decide(attached=attached)
    assert [p.name for p in decided.finalize] == ["call_messages_2026_01"]
    assert _archived(decided) == ["call_metrics_2026_01"]
    assert decided.left_alone == ("call_messages_2026_01: detached, but not by retention",)


def test_a_month_archived_before_gets_the_next_free_archive_name() -> None:
    taken = frozenset({"call_messages_2026_01", "call_messages_2026_01_2"})
    decided = _decide(attached=_partitions(date(2026, 1, 1)), archive_names=taken)
    assert _archived(decided) == ["call_messages_2026_01_3", "call_metrics_2026_01"]


def test_archives_are_dropped_once_their_grace_period_is_over() -> None:
    records = [
        _record("call_messages_2026_01", ArchiveStatus.ARCHIVED, archived_at=NOW - timedelta(7)),
        _record(
            "call_metrics_2026_01",
            ArchiveStatus.ARCHIVED,
            archived_at=NOW - timedelta(days=7) + timedelta(seconds=1),
        ),
    ]
    decided = _decide(records=records)
    assert [(s.name, s.after_export) for s in decided.drop] == [
        ("archive.call_messages_2026_01", False)
    ]
    assert decided.drop[0].record == records[0]


def test_without_a_grace_period_what_a_run_archives_it_drops() -> None:
    decided = _decide(
        policy=RetentionPolicy(retention_days=365, grace_days=0),
        drop_archived_before=NOW,
        attached=_partitions(date(2026, 1, 1)),
    )
    assert [(s.name, s.record) for s in decided.drop] == [
        ("archive.call_messages_2026_01", None),
        ("archive.call_metrics_2026_01", None),
    ]


def test_with_exports_on_every_archive_is_exported_before_it_is_dropped(tmp_path: Path) -> None:
    week_ago = NOW - timedelta(days=8)
    records = [
        _record("call_messages_2025_12", ArchiveStatus.ARCHIVED, archived_at=week_ago),
        _record(
            "call_metrics_2025_12",
            ArchiveStatus.ARCHIVED,
            archived_at=week_ago,
            export_path=str(tmp_path / "done.copy.gz"),
        ),
    ]
    policy = RetentionPolicy(retention_days=365, grace_days=7, export_dir=tmp_path)
    decided = _decide(policy=policy, attached=_partitions(date(2026, 1, 1)), records=records)
    assert [(s.path, s.record) for s in decided.export] == [
        (export_path(tmp_path, "call_messages", "call_messages_2026_01", archived_at=NOW), None),
        (export_path(tmp_path, "call_metrics", "call_metrics_2026_01", archived_at=NOW), None),
        (
            export_path(tmp_path, "call_messages", "call_messages_2025_12", archived_at=week_ago),
            records[0],
        ),
    ]
    # The one not exported yet waits for its export; the one exported is verified and dropped.
    assert [(s.name, s.after_export) for s in decided.drop] == [
        ("archive.call_messages_2025_12", True),
        ("archive.call_metrics_2025_12", False),
    ]


def test_records_still_detaching_are_neither_exported_nor_dropped(tmp_path: Path) -> None:
    policy = RetentionPolicy(retention_days=365, grace_days=0, export_dir=tmp_path)
    records = [_record("call_messages_2025_12", ArchiveStatus.DETACHING)]
    decided = _decide(policy=policy, drop_archived_before=NOW, records=records)
    assert decided.export == () and decided.drop == ()
    assert decided.left_alone == ()  # its table is gone: nothing to resume
