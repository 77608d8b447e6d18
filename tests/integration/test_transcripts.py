"""One transcript whichever path writes it: a live finalize, the Azure migration's writer and
the consistency repair make the same ``call_transcripts`` row from the same messages, and it is
the row ``worker.calls.transcripts`` defines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from sqlalchemy import Engine

from tests import factories
from tests.strategies import message_entries
from worker.azure.writer import Writer
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.consistency.repair import RepairAction, apply
from worker.settings import Settings


def _transcript(conn: psycopg.Connection[Any], call_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            "SELECT transcript_text, transcript_data, message_count FROM call_transcripts"
            " WHERE call_id = %s",
            (call_id,),
        ).fetchone()


def expected(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The definition in words: no row without messages; else lines and JSON in sequence
    order (ties as sent), timestamps in UTC."""
    if not messages:
        return None
    ordered = sorted(messages, key=lambda m: m["sequence"])
    return {
        "transcript_text": "\n".join(f"{m['role']}: {m['content']}" for m in ordered),
        "transcript_data": [
            {
                "sequence": m["sequence"],
                "timestamp": datetime.fromisoformat(m["timestamp"]).astimezone(UTC).isoformat(),
                "role": m["role"],
                "content": m["content"],
                "node_id": m["node_id"],
                "turn_number": m["turn_number"],
            }
            for m in ordered
        ],
        "message_count": len(messages),
    }


def _spoil(conn: psycopg.Connection[Any], call_id: str, *, missing: bool) -> None:
    """Make the stored transcript wrong: gone, or a stale row (what an empty call once had)."""
    conn.execute("DELETE FROM call_transcripts WHERE call_id = %s", (call_id,))
    if not missing:
        conn.execute(
            "INSERT INTO call_transcripts (call_id, transcript_text, transcript_data,"
            " message_count) VALUES (%s, 'stale', '[]', 0)",
            (call_id,),
        )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # Unique sequences: the contract refuses a repeat.
    messages=st.lists(message_entries(), max_size=8, unique_by=lambda m: m["sequence"]),
    missing=st.booleans(),
)
def test_live_migrated_and_repaired_transcripts_are_the_same_row(
    settings: Settings,
    engine: Engine,
    conn: psycopg.Connection[Any],
    messages: list[dict[str, Any]],
    missing: bool,
) -> None:
    call_id = str(uuid.uuid4())
    body = factories.small_payload(1, call_id=call_id, twilio_call_sid=None, messages=messages)
    outcome = finalize_call(body, settings=settings, task_id="t", engine=engine).outcome
    assert outcome is FinalizeOutcome.PERSISTED
    live = _transcript(conn, call_id)
    assert live == expected(messages)

    _spoil(conn, call_id, missing=missing)
    with conn.transaction():
        Writer(conn).finish_calls([uuid.UUID(call_id)])
    assert _transcript(conn, call_id) == live

    _spoil(conn, call_id, missing=not missing)
    apply(settings, [RepairAction("missing_transcript", (call_id,), "rebuild")])
    assert _transcript(conn, call_id) == live


def test_a_later_revision_rewrites_the_transcript_only_when_it_changes(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    rec = factories.recorder(21)
    rec.update_status("in_progress")
    first = rec.build_payload()
    call_id = first["call_id"]

    def stored() -> tuple[Any, ...] | None:
        return conn.execute(
            "SELECT message_count, updated_at, xmin::text FROM call_transcripts WHERE call_id = %s",
            (call_id,),
        ).fetchone()

    finalize_call(first, settings=settings, task_id="1", engine=engine)
    before = stored()
    assert before is not None and before[0] == len(first["messages"])

    same = {**first, "revision": first["revision"] + 1, "status": "ended"}
    finalize_call(same, settings=settings, task_id="2", engine=engine)
    assert stored() == before  # the same messages: the row is not written again

    extra = {**first["messages"][0], "sequence": len(first["messages"]) + 1}
    more = {**first, "revision": first["revision"] + 2, "messages": [*first["messages"], extra]}
    finalize_call(more, settings=settings, task_id="3", engine=engine)
    grown = stored()
    assert grown is not None and grown[0] == len(first["messages"]) + 1

    finalize_call(
        {**first, "revision": first["revision"] + 3, "messages": []},
        settings=settings,
        task_id="4",
        engine=engine,
    )
    assert stored() is None  # no message, no transcript
