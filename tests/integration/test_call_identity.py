"""Concurrency and identity of calls on a real PostgreSQL: deliveries racing each other, the
same (call id, revision) with other content, two recorders for one call."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import generate_latest
from sqlalchemy import Engine

from tests import factories
from worker.calls.finalize import FinalizeOutcome, FinalizeResult, finalize_call
from worker.consistency.checks import STORE_CHECKS
from worker.consistency.types import CheckContext
from worker.monitoring.prometheus import registry_for
from worker.settings import Settings


def _race(bodies: list[dict[str, Any]], settings: Settings, engine: Engine) -> list[FinalizeResult]:
    """Finalize ``bodies`` at the same moment, one thread each."""
    start = threading.Barrier(len(bodies))
    results: list[FinalizeResult] = []

    def deliver(body: dict[str, Any]) -> None:
        start.wait()
        results.append(finalize_call(body, settings=settings, task_id="race", engine=engine))

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_first_deliveries_at_the_same_moment_are_never_dead_lettered(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    """Two first deliveries race for the insert: the loser meets the winner's row on the
    unique index of (source, twilio_call_sid) as well as on the primary key; it is a race,
    retried, never a permanent error, and the higher revision is what stays. A long
    ``error_message`` (written to TOAST between PostgreSQL's conflict check and its index
    inserts) widens the window the race needs."""
    outcomes: list[FinalizeOutcome] = []
    for seed in range(30):
        first = factories.small_payload(20_000 + seed, error_message=os.urandom(600_000).hex())
        second = {**first, "revision": first["revision"] + 1}
        outcomes += [r.outcome for r in _race([first, second], settings, engine)]
        (revision,) = conn.execute(
            "SELECT revision FROM calls WHERE call_id = %s", (first["call_id"],)
        ).fetchone() or (None,)
        assert revision == second["revision"], (
            f"round {seed}: the call stayed at revision {revision}"
        )
    assert FinalizeOutcome.DEAD_LETTERED not in outcomes
    assert conn.execute("SELECT count(*) FROM failed_payloads").fetchone() == (0,)


def _stored(conn: psycopg.Connection[Any], call_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT agent_name, total_messages, finalized_at FROM calls WHERE call_id = %s",
        (call_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_same_revision_with_other_content_keeps_the_later_finalize_and_says_so(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    earlier = factories.small_payload(21_000, agent_name="Alex")
    later_at = factories.DEFAULT_START + timedelta(hours=2)
    later = {**earlier, "agent_name": "Noor", "finalized_at": later_at.isoformat()}
    later["messages"] = earlier["messages"][:2]

    assert finalize_call(earlier, settings=settings, task_id="a", engine=engine).outcome is (
        FinalizeOutcome.PERSISTED
    )
    replaced = finalize_call(later, settings=settings, task_id="b", engine=engine)
    assert replaced.outcome is FinalizeOutcome.PERSISTED
    assert _stored(conn, earlier["call_id"])[:2] == ("Noor", 2)
    # The earlier one arriving again (a redelivery) changes nothing, and is kept for an operator.
    again = finalize_call(earlier, settings=settings, task_id="c", engine=engine)
    assert again.outcome is FinalizeOutcome.CONFLICT
    assert _stored(conn, earlier["call_id"])[:2] == ("Noor", 2)
    conflicts = conn.execute(
        "SELECT kept, revision FROM call_conflicts WHERE call_id = %s ORDER BY seen_at",
        (earlier["call_id"],),
    ).fetchall()
    assert conflicts == [("incoming", earlier["revision"]), ("stored", earlier["revision"])]
    letters = conn.execute(
        "SELECT error_class FROM failed_payloads WHERE call_id = %s", (earlier["call_id"],)
    ).fetchall()
    assert letters == [("RevisionConflict",)]
    # Where an operator sees it: the metrics endpoint and ``callstore check``.
    exposition = generate_latest(registry_for(settings)).decode()
    assert "callstore_revision_conflicts 2.0" in exposition
    context = CheckContext(conn=conn, settings=settings, now=datetime.now(UTC), since=None)
    found = list(STORE_CHECKS["revision_conflicts"](context))
    assert [(d.kind, d.keys["kept"]) for d in found] == [
        ("revision_conflict", "incoming"),
        ("revision_conflict", "stored"),
    ]


def test_an_identical_redelivery_is_no_conflict(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = factories.small_payload(21_100)
    finalize_call(body, settings=settings, task_id="a", engine=engine)
    again = finalize_call(body, settings=settings, task_id="b", engine=engine)
    assert again.outcome is FinalizeOutcome.UNCHANGED
    assert conn.execute("SELECT count(*) FROM call_conflicts").fetchone() == (0,)


def _two_recorders(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payloads of two recorders of one call: the first ended it, the second (finalized
    an hour later) says it failed."""
    first, second = factories.recorder(seed), factories.recorder(seed + 1)
    first.update_status("ended")
    second.update_status("error", "the other component ended it")
    early, late = first.build_payload(), second.build_payload()  # built in that order
    late.update({key: early[key] for key in ("call_id", "tenant_id", "agent_id")})
    late["finalized_at"] = (factories.DEFAULT_START + timedelta(hours=3)).isoformat()
    return early, late


def test_two_recorders_for_one_call_the_later_finalize_wins_whatever_the_order(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    """A restarted runtime, or another component ending the call, records it again: revisions
    are the wall clock when each payload is built, so the later finalize is the higher one
    whichever process sent it and whichever arrives first."""
    for seed, later_first in ((21_200, False), (21_300, True)):
        early, late = _two_recorders(seed)
        for body in [late, early] if later_first else [early, late]:
            finalize_call(body, settings=settings, task_id="r", engine=engine)
        (status,) = conn.execute(
            "SELECT status FROM calls WHERE call_id = %s", (early["call_id"],)
        ).fetchone() or (None,)
        assert status == "error", f"later first: {later_first}"
