"""The dead-letter store: payloads that could not be persisted, kept whole for an operator.

A payload lands here when it is permanently bad (fails validation, violates a constraint), when
its transient failures outlast the retries, or when the worker refused its message before any
task ran it (``worker.calls.messages.Refusal``). Nothing is ever dropped: ``replay`` validates a
payload again and re-enqueues it, and marks the row so the history stays visible.

A row always holds bytes ``dead-letter show`` prints and ``replay`` reads: the payload's JSON,
or, for a refused message, the message body that arrived (``replay`` takes the payload out of a
Celery body that carries exactly one), or, when even that is not JSON, the bytes as they came.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from models.enums import DeadLetterStatus
from models.operations import DeadLetter
from models.payload import TASK_NAME
from worker.calls.messages import MESSAGE_DEPTH_LIMIT, Refusal, json_deeper_than, single_payload
from worker.calls.raw_calls import RawCall
from worker.calls.validation import encode, validate_payload
from worker.db import session_scope
from worker.errors import BrokerUnavailable, PayloadInvalid, PermanentError
from worker.jobs import Progress

_MAX_MESSAGE = 4000


def call_id_of(raw: Any) -> uuid.UUID | None:
    """The call id of a raw payload when it has a readable one (bad payloads may not)."""
    if isinstance(raw, RawCall):
        return raw.call_id
    if isinstance(raw, dict):
        try:
            return uuid.UUID(str(raw.get("call_id")))
        except ValueError:
            return None
    return None


def payload_bytes(raw: Any) -> bytes:
    """What to keep of a decoded payload: its compact JSON; the standard library's (which
    escapes a lone surrogate, ``\\ud83d``, and nests deeper than pydantic's encoder) when that
    refuses; a ``repr`` only for what is not JSON at all (an object handed in by code). Of a
    message body the worker could not decode (``RawCall``), the body as it arrived."""
    if isinstance(raw, RawCall):
        return raw.body
    try:
        return encode(raw)
    except PermanentError:
        pass
    try:
        return json.dumps(raw, ensure_ascii=True, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError):
        return repr(raw).encode("utf-8", "backslashreplace")


def record(
    session: Session,
    *,
    body: bytes,
    task_name: str,
    task_id: str | None,
    error: BaseException,
    call_id: uuid.UUID | None,
) -> uuid.UUID:
    """Keep ``body`` with why it failed. The same payload twice is one row, ``attempts`` + 1."""
    digest = hashlib.sha256(body).hexdigest()
    message = (str(error) or type(error).__name__)[:_MAX_MESSAGE]
    statement = (
        insert(DeadLetter)
        .values(
            payload_sha256=digest,
            payload=body,
            call_id=call_id,
            task_name=task_name,
            task_id=task_id,
            error_class=_error_class(error),
            error_message=message,
        )
        .on_conflict_do_update(
            index_elements=["payload_sha256"],
            set_={
                "attempts": DeadLetter.attempts + 1,
                "last_seen_at": func.now(),
                "task_id": task_id,
                "error_class": _error_class(error),
                "error_message": message,
                "status": DeadLetterStatus.PENDING.value,
            },
        )
        .returning(col(DeadLetter.id))
    )
    dead_letter_id: uuid.UUID = session.execute(statement).scalar_one()
    return dead_letter_id


def record_refusal(session: Session, refusal: Refusal) -> uuid.UUID:
    """Keep a message refused before any task ran it, with the bytes that arrived."""
    return record(
        session,
        body=refusal.body,
        task_name=refusal.task_name[:100] or TASK_NAME,
        task_id=refusal.task_id,
        error=RefusedMessage(refusal.error_class, refusal.reason),
        call_id=refusal.call_id,
    )


class RefusedMessage(Exception):
    """A refusal as ``record`` takes it: its class name is the refusal's ``error_class``."""

    def __init__(self, error_class: str, reason: str) -> None:
        super().__init__(reason)
        self.error_class = error_class


def _error_class(error: BaseException) -> str:
    return error.error_class if isinstance(error, RefusedMessage) else type(error).__name__


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """A dead letter that validated again and is ready to be re-enqueued."""

    id: uuid.UUID
    payload: dict[str, Any]


def pending(session: Session, *, limit: int = 100) -> Sequence[DeadLetter]:
    """Dead letters waiting for an operator, oldest first."""
    statement = (
        select(DeadLetter)
        .where(DeadLetter.status == DeadLetterStatus.PENDING.value)
        .order_by(col(DeadLetter.first_seen_at))
        .limit(limit)
    )
    return session.exec(statement).all()


def listing(
    session: Session, *, status: DeadLetterStatus | None = None, limit: int = 50
) -> Sequence[DeadLetter]:
    """The most recent dead letters, optionally of one status."""
    statement = select(DeadLetter).order_by(col(DeadLetter.last_seen_at).desc()).limit(limit)
    if status is not None:
        statement = statement.where(DeadLetter.status == status.value)
    return session.exec(statement).all()


def get(session: Session, dead_letter_id: uuid.UUID) -> DeadLetter | None:
    return session.get(DeadLetter, dead_letter_id)


def count_pending(session: Session) -> int:
    statement = select(func.count()).where(DeadLetter.status == DeadLetterStatus.PENDING.value)
    return int(session.exec(statement).one())


def parse_replayable(body: bytes, *, max_bytes: int) -> dict[str, Any]:
    """The payload in ``body``, validated; ``PayloadInvalid`` says why it cannot be replayed.

    ``body`` is a payload's JSON, or a Celery message body (``[args, kwargs, embed]``) that
    carries exactly one payload, as the worker keeps a message it refused.
    """
    if json_deeper_than(body, MESSAGE_DEPTH_LIMIT):
        raise PayloadInvalid(f"nested more than {MESSAGE_DEPTH_LIMIT} levels deep")
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise PayloadInvalid(f"stored payload is not JSON: {error}") from error
    if isinstance(raw, list) and len(raw) == 3:
        raw = single_payload(raw[0], raw[1])
    validate_payload(raw, max_bytes=max_bytes)
    return dict(raw)


def prepare_replay(row: DeadLetter, *, max_bytes: int) -> ReplayPlan:
    """Validate a dead letter again; ``PayloadInvalid`` says why it still cannot be replayed."""
    raw = parse_replayable(row.payload, max_bytes=max_bytes)
    assert row.id is not None
    return ReplayPlan(id=row.id, payload=raw)


def mark_replayed(
    session: Session, dead_letter_id: uuid.UUID, *, task_id: str, edited: bytes | None = None
) -> None:
    """Mark the row replayed; ``edited`` is what was replayed instead of its payload (an
    operator's edit), kept on the row with its time."""
    values: dict[str, Any] = {
        "status": DeadLetterStatus.REPLAYED.value,
        "replayed_at": func.now(),
        "replay_task_id": task_id,
    }
    if edited is not None:
        values.update(edited_payload=edited, edited_at=func.now())
    session.execute(update(DeadLetter).where(col(DeadLetter.id) == dead_letter_id).values(values))


def _carries_one_payload(value: Any) -> bool:
    """A Celery message body, ``[args, kwargs, embed]``, whose only argument is a payload."""
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], list)
        and len(value[0]) == 1
        and not value[1]
    )


def readable(body: bytes) -> str:
    """``body`` as text to read or edit: indented JSON (non-ASCII kept, a lone surrogate
    escaped as ``\\ud83d``), or, when it is not JSON, its bytes with the undecodable ones
    escaped."""
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return body.decode("utf-8", "backslashreplace")
    if _carries_one_payload(value):
        value = value[0][0]
    text = json.dumps(value, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, indent=2, ensure_ascii=True)
    return text


@dataclass(slots=True)
class ReplayReport:
    """What a replay did: rows re-enqueued, rows that still fail validation (with why)."""

    total: int = 0
    replayed: int = 0
    refused: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    broker_error: str | None = None

    def counts(self) -> dict[str, Any]:
        return {"total": self.total, "replayed": self.replayed, "refused": len(self.refused)}


#: ``send(payload) -> task id``; raises ``BrokerUnavailable`` when the broker refuses it.
SendPayload = Callable[[dict[str, Any]], str]


def replay_pending(
    send: SendPayload,
    *,
    max_bytes: int,
    engine: Engine | None = None,
    batch_size: int = 100,
    progress: Progress | None = None,
) -> ReplayReport:
    """Validate again and re-enqueue every pending dead letter, in batches of short transactions.

    Each batch locks its rows (``FOR UPDATE``), so two replays at once never send a row twice:
    the second waits, then finds the rows no longer pending. A row that still fails validation
    stays pending and is reported. If the broker refuses a message, the replay stops; the rows
    sent before it are marked, the rest stay pending for the next replay.
    """
    report = ReplayReport()
    with session_scope(engine) as session:
        report.total = count_pending(session)
    after: uuid.UUID | None = None
    while report.broker_error is None:
        with session_scope(engine) as session:
            statement = (
                select(DeadLetter)
                .where(DeadLetter.status == DeadLetterStatus.PENDING.value)
                .order_by(col(DeadLetter.id))
                .limit(batch_size)
                .with_for_update()
            )
            if after is not None:
                statement = statement.where(col(DeadLetter.id) > after)
            rows = session.exec(statement).all()
            if not rows:
                break
            for row in rows:
                assert row.id is not None
                after = row.id
                try:
                    plan = prepare_replay(row, max_bytes=max_bytes)
                except PayloadInvalid as error:
                    report.refused.append((row.id, str(error)))
                    continue
                try:
                    task_id = send(plan.payload)
                except BrokerUnavailable as error:
                    report.broker_error = str(error)
                    break
                mark_replayed(session, plan.id, task_id=task_id)
                report.replayed += 1
        if progress is not None:
            progress(**report.counts())
    return report
