"""``maintenance.canary``: a round trip through the ``calls`` queue every minute (``worker/monitoring/canary.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

from celery import Task

from worker.celery_app import app
from worker.db import raw_connection, session_scope
from worker.monitoring import canary as canary_service


@app.task(bind=True, name=canary_service.CANARY_TASK, ignore_result=True)
def canary(self: Task) -> dict[str, float]:
    """Record how long this message took from beat to a finalize worker."""
    now = datetime.now(UTC)
    sent_at = canary_service.sent_at_from(
        self.request.get(canary_service.SENT_AT_HEADER), default=now
    )
    with session_scope() as session:
        roundtrip = canary_service.record_roundtrip(
            raw_connection(session), sent_at=sent_at, now=now
        )
    return {"roundtrip_seconds": round(roundtrip, 3)}
