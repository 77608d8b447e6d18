"""Draining a spool: recover the calls of dead runtime processes, re-publish what waits for the
broker, reconcile the outbox.

Run by the recorder's background drainer (``worker.client.delivery``), ``callstore spool
flush`` on the runtime's host and beat's ``maintenance.flush_spool`` where the spool is a shared
volume. It publishes through the ``send`` it is given, so a worker-side job drains without
importing the publisher.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from worker.client import settlement
from worker.client.queues import redis_client
from worker.client.recovery import RecoveryResult, recover_orphans
from worker.client.spool import FlushResult, ReconcileResult, Send, Spool
from worker.settings import ClientSettings


@dataclass(frozen=True, slots=True)
class DrainResult:
    """What one pass over the spool and the outbox did."""

    flushed: FlushResult
    reconciled: ReconcileResult
    recovered: RecoveryResult


def drain(
    settings: ClientSettings,
    *,
    send: Send,
    limit: int | None = None,
    now: float | None = None,
) -> DrainResult:
    """Recover orphaned journals (``worker.client.recovery``), re-publish spooled calls (oldest
    first), then reconcile the outbox: forget settled calls, publish again those unsettled for
    too long (``worker.client.settlement``).

    The recorder's drainer runs it in the background; ``callstore spool flush`` runs it on the
    runtime's host; the ``maintenance.flush_spool`` beat task runs it where the spool is on a
    volume the workers share.
    """
    spool = Spool(settings.spool_dir)
    recovered = recover_orphans(spool, send)
    flushed = spool.flush(send, limit=limit)
    if not spool.sent_entries():
        return DrainResult(flushed, ReconcileResult(), recovered)
    client = redis_client(
        settings.broker_url.get_secret_value(), timeout=settings.publish_timeout_seconds
    )
    try:
        reconciled = spool.reconcile_sent(
            settled=lambda ids: settlement.settled_revisions(client, ids),
            in_flight=lambda ids: settlement.in_flight(client, ids),
            send=send,
            now=time.time() if now is None else now,
            redeliver_after=settings.outbox_redeliver_seconds,
        )
    except redis.RedisError as error:
        reconciled = ReconcileResult(broker_error=f"{type(error).__name__}: {error}")
    finally:
        client.close()
    return DrainResult(flushed, reconciled, recovered)
