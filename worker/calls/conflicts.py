"""Conflicts: two contents delivered under one (call id, revision).

A runtime numbers its own finalizations; two recorders for one call (a restarted runtime,
another component ending the call) or a producer re-sending a call with other content can send
the same revision twice with different data. ``worker.calls.persist`` keeps one by a rule that
does not depend on the order of arrival (the later ``finalized_at``, then the greater digest);
this module records each such delivery in ``call_conflicts``, where ``callstore check``
(``worker.consistency.checks.revision_conflicts``) and the metrics endpoint
(``callstore_revision_conflicts``) show it. The losing incoming payload itself is kept in
``failed_payloads`` (``RevisionConflict``) by the finalize service.
"""

from __future__ import annotations

from typing import Any

import psycopg

from worker.calls.persist import Conflict

_RECORD = b"""
INSERT INTO call_conflicts (call_id, revision, kept, stored_digest, incoming_digest,
                            stored_finalized_at, incoming_finalized_at, task_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""


def record(conn: psycopg.Connection[Any], conflict: Conflict, *, task_id: str | None) -> None:
    """Record ``conflict`` in the caller's transaction."""
    conn.execute(
        _RECORD,
        (
            conflict.call_id,
            conflict.revision,
            conflict.kept,
            conflict.stored_digest,
            conflict.incoming_digest,
            conflict.stored_finalized_at,
            conflict.incoming_finalized_at,
            task_id,
        ),
    )


def count(conn: psycopg.Connection[Any]) -> int:
    """Conflicts recorded so far (the metric: alert on its increase)."""
    row = conn.execute("SELECT count(*) FROM call_conflicts").fetchone()
    return int(row[0]) if row else 0


def describe(conflict: Conflict) -> str:
    loser = "the stored content" if conflict.kept == "incoming" else "this delivery"
    return (
        f"call {conflict.call_id} revision {conflict.revision} arrived with other content"
        f" (digest {conflict.incoming_digest[:12]}, stored {conflict.stored_digest[:12]});"
        f" {loser} lost: the later finalized_at wins, then the greater digest"
    )
