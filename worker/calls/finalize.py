"""Finalizing a call on the worker: validate, make sure partitions exist, persist in one
transaction, and dead-letter what can never be persisted.

This is the plain function behind the ``calls.finalize`` task. It raises ``TransientError``
for the task to retry and returns a ``FinalizeResult`` for everything else, so a call ends
either persisted exactly once or in ``failed_payloads`` with the reason.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Engine
from sqlmodel import Session

from models.payload import TASK_NAME, CallPayload
from worker.calls import conflicts, dead_letters
from worker.calls.persist import PersistOutcome, PersistResult, persist_call
from worker.calls.validation import ClockWindow, validate_payload
from worker.db import get_engine, raw_connection, session_scope
from worker.errors import (
    ConcurrencyConflict,
    ConstraintViolation,
    DuplicateKey,
    PartitionMissing,
    PermanentError,
    RevisionConflict,
)
from worker.log import get_logger
from worker.maintenance.partition_cache import partition_guard
from worker.maintenance.partitions import add_months, month_start
from worker.settings import Settings

log = get_logger("callstore.finalize")


class FinalizeOutcome(StrEnum):
    PERSISTED = "persisted"
    UNCHANGED = "unchanged"
    DEAD_LETTERED = "dead_lettered"
    #: The same revision is stored with other content, and kept; this delivery is in
    #: ``failed_payloads`` and ``call_conflicts``.
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    outcome: FinalizeOutcome
    call_id: UUID | None
    revision: int | None = None
    rows: dict[str, int] = field(default_factory=dict)
    duration_ms: float = 0.0
    dead_letter_id: UUID | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (the task's return value, shown by Flower)."""
        return {
            "outcome": self.outcome.value,
            "call_id": str(self.call_id) if self.call_id else None,
            "revision": self.revision,
            "rows": sum(self.rows.values()),
            "duration_ms": round(self.duration_ms, 2),
            "dead_letter_id": str(self.dead_letter_id) if self.dead_letter_id else None,
            "error": self.error,
        }


#: The payload's lists whose rows go into monthly partitions (a retrieval's chunks carry its
#: timestamp).
PARTITIONED_FIELDS = ("messages", "transitions", "metrics", "rag_retrievals")


def partition_months(payload: CallPayload) -> set[date]:
    """Months of the rows ``payload`` writes into partitioned tables: every month from the
    earliest entry's to the latest's. A call spans at most ``MAX_CALL_SPAN`` (two days), so no
    month in between can lack an entry."""
    found = payload.stamp_range(PARTITIONED_FIELDS)
    if found is None:
        return set()
    month, last = month_start(found[0]), month_start(found[1])
    months = {month}
    while month < last:
        month = add_months(month, 1)
        months.add(month)
    return months


def finalize_call(
    raw: Any, *, settings: Settings, task_id: str | None, engine: Engine | None = None
) -> FinalizeResult:
    """Persist ``raw`` (a ``calls.finalize`` message), or dead-letter it when it is bad."""
    engine = engine or get_engine()
    started = time.perf_counter()
    call_id = dead_letters.call_id_of(raw)
    window = ClockWindow.around(
        datetime.now(UTC),
        retention_days=settings.retention_days,
        skew_seconds=settings.max_clock_skew,
    )
    try:
        payload, body = validate_payload(raw, max_bytes=settings.max_payload_bytes, window=window)
    except PermanentError as error:
        return dead_letter(raw, error, task_id=task_id, engine=engine)

    written = _Write(payload, body, task_id)
    months = partition_months(payload)
    partition_guard.ensure(engine, months)
    try:
        try:
            result = written.persist(engine)
        except PartitionMissing:
            # A month was dropped or never made since this process last looked: make it, once.
            partition_guard.forget()
            partition_guard.ensure(engine, months)
            result = written.persist(engine)
    except ConstraintViolation as error:
        return dead_letter(raw, error, task_id=task_id, engine=engine)

    elapsed = (time.perf_counter() - started) * 1000
    outcome = _OUTCOMES[result.outcome]
    log.info(
        "call finalized",
        action="finalize",
        call_id=str(call_id),
        revision=payload.revision,
        outcome=result.outcome.value,
        rows=result.row_count,
        duration_ms=round(elapsed, 2),
    )
    if result.conflict is not None:
        log.warning(
            "revision conflict", action="conflict", detail=conflicts.describe(result.conflict)
        )
    return FinalizeResult(
        outcome, call_id, payload.revision, result.rows, elapsed, dead_letter_id=written.kept_as
    )


_OUTCOMES = {
    PersistOutcome.INSERTED: FinalizeOutcome.PERSISTED,
    PersistOutcome.REPLACED: FinalizeOutcome.PERSISTED,
    PersistOutcome.UNCHANGED: FinalizeOutcome.UNCHANGED,
    PersistOutcome.CONFLICT: FinalizeOutcome.CONFLICT,
}
#: Times a call's transaction is run again after a concurrent delivery of the same call won
#: the insert (each try waits for the winner to commit, so the next one sees its row).
RACE_TRIES = 3


@dataclass(slots=True)
class _Write:
    """One call's transaction: the rows, a conflict's record, and the losing delivery kept."""

    payload: CallPayload
    body: bytes
    task_id: str | None
    kept_as: UUID | None = None

    def persist(self, engine: Engine) -> PersistResult:
        """Run the transaction; a unique violation is a race with another delivery, run again."""
        digest = hashlib.sha256(self.body).hexdigest()
        for attempt in range(1, RACE_TRIES + 1):
            try:
                with session_scope(engine) as session:
                    return self._write(session, digest)
            except DuplicateKey as error:
                if attempt == RACE_TRIES:
                    raise ConcurrencyConflict(
                        f"a concurrent delivery kept winning: {error}"
                    ) from error
                log.info("a concurrent delivery of the call won the insert; trying again")
        raise AssertionError("unreachable")

    def _write(self, session: Session, digest: str) -> PersistResult:
        conn = raw_connection(session)
        result = persist_call(conn, self.payload, digest=digest)
        if result.conflict is not None:
            conflicts.record(conn, result.conflict, task_id=self.task_id)
        if result.outcome is PersistOutcome.CONFLICT:
            assert result.conflict is not None
            self.kept_as = dead_letters.record(
                session,
                body=self.body,
                task_name=TASK_NAME,
                task_id=self.task_id,
                error=RevisionConflict(conflicts.describe(result.conflict)),
                call_id=self.payload.call_id,
            )
        return result


def dead_letter(
    raw: Any, error: BaseException, *, task_id: str | None, engine: Engine | None = None
) -> FinalizeResult:
    """Dead-letter ``raw`` with ``error``. Raises ``DatabaseUnavailable`` if even that fails,
    in which case the caller must keep the message (retry) rather than drop it."""
    body = dead_letters.payload_bytes(raw)
    call_id = dead_letters.call_id_of(raw)
    with session_scope(engine or get_engine()) as session:
        dead_letter_id = dead_letters.record(
            session,
            body=body,
            task_name=TASK_NAME,
            task_id=task_id,
            error=error,
            call_id=call_id,
        )
    log.warning(
        "call dead-lettered",
        action="dead_letter",
        call_id=str(call_id),
        dead_letter_id=str(dead_letter_id),
        error_class=type(error).__name__,
        error=str(error)[:500],
    )
    return FinalizeResult(
        FinalizeOutcome.DEAD_LETTERED,
        call_id,
        dead_letter_id=dead_letter_id,
        error=f"{type(error).__name__}: {error}",
    )
