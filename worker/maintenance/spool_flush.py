"""The ``flush_spool`` job: drain a spool on a volume the workers share (orphaned call journals
recovered first).

The runtime's host drains its own spool (the recorder, ``callstore spool flush``); where the
spool is a shared volume, beat's ``maintenance.flush_spool`` drains it from a worker, one run at
a time across the fleet.
"""

from __future__ import annotations

from typing import Any

from worker.client.drain import DrainResult, drain
from worker.client.spool import Send
from worker.jobs import JobName, Skipped, exclusive_job
from worker.settings import Settings


def details(drained: DrainResult) -> dict[str, Any]:
    """What a run did, as the task returns it and ``job_runs.last_details`` keeps it."""
    flushed, reconciled, recovered = drained.flushed, drained.reconciled, drained.recovered
    return {
        "recovered": recovered.recovered,
        "recovered_damaged": recovered.damaged,
        "journals_corrupt": recovered.corrupt,
        "sent": flushed.sent,
        "remaining": flushed.remaining,
        "corrupt": flushed.corrupt,
        "broker_error": flushed.broker_error or reconciled.broker_error,
        "outbox_settled": reconciled.settled,
        "outbox_redelivered": reconciled.redelivered,
    }


def run_spool_flush(
    settings: Settings, *, send: Send, limit: int | None = None
) -> DrainResult | Skipped:
    """Re-publish up to ``limit`` spooled calls and reconcile the outbox, under the job's lock."""
    with exclusive_job(settings, JobName.FLUSH_SPOOL) as job:
        if job is None:
            return Skipped(JobName.FLUSH_SPOOL)
        drained = drain(settings, send=send, limit=limit)
        job.details.update(details(drained))
    return drained
