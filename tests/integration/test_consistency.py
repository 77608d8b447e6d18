"""The consistency checks find each injected class of damage, precisely, and repair what they can.

``callstore check`` as a process (exit codes, dry run, repair) is in
``tests/acceptance/test_consistency_cli.py``; the ``calls`` fixture is in ``tests/conftest.py``."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from tests import factories
from worker.calls.finalize import finalize_call
from worker.client.spool import Spool
from worker.consistency.runner import run_checks
from worker.maintenance.partitions import add_months, month_start, partition_name
from worker.settings import Settings

NOW = datetime.now(UTC)


def _found(
    settings: Settings, *, now_: datetime = NOW, **kwargs: Any
) -> list[tuple[str, dict[str, Any]]]:
    report = run_checks(settings, now=now_, **kwargs)
    return [(d.kind, d.keys) for d in report.discrepancies]


def test_a_clean_store_reports_nothing(settings: Settings, calls: list[dict[str, Any]]) -> None:
    assert _found(settings, full=True) == []


def test_a_deleted_message_row_is_named(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    victim = calls[2]["call_id"]
    conn.execute("DELETE FROM call_messages WHERE call_id = %s AND sequence = 1", (victim,))
    found = _found(settings, full=True)
    assert found == [
        ("summary_mismatch", {"call_id": victim, "columns": ["total_messages", "total_turns"]})
    ] or found == [("summary_mismatch", {"call_id": victim, "columns": ["total_messages"]})]


def test_an_altered_summary_is_named(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    victim = calls[0]["call_id"]
    conn.execute(
        "UPDATE calls SET avg_llm_ttfb_ms = avg_llm_ttfb_ms + 1 WHERE call_id = %s", (victim,)
    )
    assert _found(settings, full=True) == [
        ("summary_mismatch", {"call_id": victim, "columns": ["avg_llm_ttfb_ms"]})
    ]


def test_an_orphaned_child_is_named(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    ghost = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO call_messages (call_id, sequence, timestamp, role, content)"
        " VALUES (%s, 1, %s, 'user', 'hello?')",
        (ghost, NOW - timedelta(minutes=5)),
    )
    assert _found(settings, full=True) == [
        ("orphan_rows", {"table": "call_messages", "call_id": ghost, "rows": 1})
    ]


def test_a_missing_transcript_is_named(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    victim = calls[1]["call_id"]
    conn.execute("DELETE FROM call_transcripts WHERE call_id = %s", (victim,))
    assert _found(settings, full=True) == [("missing_transcript", {"call_id": victim})]


def test_a_missing_future_partition_is_named(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    next_month = add_months(month_start(NOW), 1)
    conn.execute(
        sql.SQL("DROP TABLE {}").format(sql.Identifier(partition_name("call_metrics", next_month)))
    )
    assert _found(settings, full=True) == [
        ("missing_partition", {"table": "call_metrics", "month": next_month.isoformat()[:7]})
    ]


def test_a_stale_spool_file_is_named(settings: Settings, calls: list[dict[str, Any]]) -> None:
    path = Spool(settings.spool_dir).put(
        "calls.finalize", "calls", [{"call_id": "x"}], reason="down", key="x"
    )
    old = NOW.timestamp() - settings.check_spool_age_seconds - 60
    os.utime(path, (old, old))
    found = _found(settings, full=True)
    assert [(kind, keys["file"]) for kind, keys in found] == [("stale_spool_file", path.name)]


def test_stuck_and_never_finalized_calls_are_named(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    stuck = calls[3]["call_id"]
    conn.execute("UPDATE calls SET status = 'in_progress' WHERE call_id = %s", (stuck,))
    lost, settled = str(uuid.uuid4()), calls[4]["call_id"]
    for call_id in (lost, settled):
        conn.execute(
            "INSERT INTO call_announcements (call_id, started_at, announced_at) VALUES (%s, %s, %s)",
            (call_id, NOW - timedelta(days=1), NOW - timedelta(days=1)),
        )
    later = NOW + timedelta(hours=5)
    found = [
        (d.kind, d.keys["call_id"])
        for d in run_checks(settings, now=later, full=True).discrepancies
    ]
    assert ("stuck_in_progress", stuck) in found
    assert ("never_finalized", lost) in found
    assert ("never_finalized", settled) not in found  # its call arrived: settled, not lost


def test_a_checkpointed_call_is_stale_in_progress_not_never_finalized(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    """The runtime's host was lost after a checkpoint: the checkpoint is stored (and settles the
    start announcement), so the call is reported as stale, with its last checkpoint's time."""
    body = factories.small_payload(7, start=NOW - timedelta(minutes=10), status="in_progress")
    body["ended_at"] = None
    conn.execute(
        "INSERT INTO call_announcements (call_id, started_at, announced_at) VALUES (%s, %s, %s)",
        (body["call_id"], NOW - timedelta(minutes=10), NOW - timedelta(minutes=10)),
    )
    assert finalize_call(body, settings=settings, task_id="t", engine=engine).outcome.value == (
        "persisted"
    )
    row = conn.execute(
        "SELECT persisted_at FROM calls WHERE call_id = %s", (body["call_id"],)
    ).fetchone()
    assert row is not None
    checkpointed_at = row[0]
    age = settings.check_stale_in_progress_seconds

    def found(now: datetime) -> list[tuple[str, dict[str, Any]]]:
        return [
            (k, v) for k, v in _found(settings, full=True, now_=now) if k != "missing_partition"
        ]

    assert found(checkpointed_at + timedelta(seconds=age - 60)) == []
    ((kind, keys),) = found(checkpointed_at + timedelta(seconds=age + 60))
    assert kind == "stale_in_progress" and keys["call_id"] == body["call_id"]
    assert keys["last_checkpoint_at"] == checkpointed_at.isoformat()


def test_incremental_runs_examine_only_what_changed(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any]
) -> None:
    first = run_checks(settings, now=NOW)
    assert first.since is None and first.stats["summaries_examined"] == len(calls)
    conn.execute(
        "UPDATE calls SET total_turns = total_turns + 1 WHERE call_id = %s", (calls[0]["call_id"],)
    )
    second = run_checks(settings, now=NOW)
    assert second.since is not None
    assert second.stats["summaries_examined"] == 1
    assert [(d.kind, d.keys["call_id"]) for d in second.discrepancies] == [
        ("summary_mismatch", calls[0]["call_id"])
    ]
