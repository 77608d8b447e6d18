"""The canary: proof that the finalize workers consume, not only that they are alive.

Beat publishes ``maintenance.canary`` every minute onto the ``calls`` queue, behind whatever
calls wait there; publishing stamps the message with its send time (``worker.celery_app``). The
worker that executes it records the round trip in ``job_runs`` (job ``canary``: started = sent,
finished = executed). ``callstore_canary_roundtrip_age_seconds`` is the age of the newest
completed round trip, measured from its send time: it stays under a minute or so while workers
keep up, and grows without bound when they stop taking messages (stuck, partitioned from Redis,
unable to write to PostgreSQL) or fall behind by more than the canary's ``expires``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from worker.jobs import JobName

CANARY_TASK = "maintenance.canary"
#: Message header carrying the canary's publish time (ISO 8601, UTC).
SENT_AT_HEADER = "callstore_sent_at"

# A late canary (older send time) never moves the record backwards.
_RECORD = """
INSERT INTO job_runs AS j (job, last_status, last_started_at, last_finished_at,
                           last_success_at, last_duration_ms, runs, last_details)
VALUES (%(job)s, 'succeeded', %(sent_at)s, %(now)s, %(now)s, %(ms)s, 1, %(details)s)
ON CONFLICT (job) DO UPDATE SET last_status = 'succeeded',
    last_started_at = EXCLUDED.last_started_at, last_finished_at = EXCLUDED.last_finished_at,
    last_success_at = EXCLUDED.last_success_at, last_duration_ms = EXCLUDED.last_duration_ms,
    last_error = NULL, runs = j.runs + 1, last_details = EXCLUDED.last_details
 WHERE j.last_started_at IS NULL OR j.last_started_at <= EXCLUDED.last_started_at
"""
_LAST_SENT = """
SELECT last_started_at FROM job_runs WHERE job = %s AND last_success_at IS NOT NULL
"""


def sent_at_from(header: Any, *, default: datetime) -> datetime:
    """The send time in ``header``; ``default`` (execution time) when it is absent or unreadable,
    as for a canary sent by hand."""
    if isinstance(header, str):
        try:
            parsed = datetime.fromisoformat(header)
        except ValueError:
            return default
        return parsed if parsed.tzinfo else default
    return default


def record_roundtrip(conn: psycopg.Connection[Any], *, sent_at: datetime, now: datetime) -> float:
    """Record a canary sent at ``sent_at`` and executed at ``now``; return the round trip (s)."""
    roundtrip = max(0.0, (now - sent_at).total_seconds())
    conn.execute(
        _RECORD,
        {
            "job": JobName.CANARY,
            "sent_at": sent_at,
            "now": now,
            "ms": roundtrip * 1000,
            "details": Jsonb({"roundtrip_seconds": round(roundtrip, 3)}),
        },
    )
    return roundtrip


def roundtrip_age_seconds(conn: psycopg.Connection[Any], *, now: datetime) -> float | None:
    """Seconds since the newest completed canary was sent; None if none ever completed."""
    row = conn.execute(_LAST_SENT, (JobName.CANARY,)).fetchone()
    if row is None or row[0] is None:
        return None
    sent: datetime = row[0]
    return max(0.0, (now - sent).total_seconds())
