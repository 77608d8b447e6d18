"""Recovering the calls of runtime processes that died mid-call, from their journals.

A journal no live process holds (``worker.client.journal``: the owner's ``flock`` is gone) is an
orphan. ``recover_orphans`` — run by the recorder's drainer, ``callstore spool flush`` and beat's
``maintenance.flush_spool`` through ``worker.client.drain`` — takes the journal's lock itself (so
two recoverers never take the same one, and nobody takes a live one), replays it into a payload
and hands it off like a finalized call: published (and kept in the outbox), or spooled when the
broker cannot take it. Only then is the journal removed.

The payload has status ``interrupted`` (unless the runtime had asked for a finalize that could
not be handed off: then the status it asked for), everything the journal kept, an
``error_message`` saying where it came from and what was dropped, and as its revision the wall
time of the journal's last record (or checkpoint) plus one microsecond: later than every
checkpoint of the call, earlier than any finalize its process could still make.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.enums import CallStatus
from models.payload import QUEUE, TASK_NAME
from worker.client.calldata import CallData
from worker.client.journal import (
    CHECKPOINT,
    CORRUPT_DIR,
    ENTRY,
    FINAL,
    HEADER,
    SET,
    JournalRead,
    journal_paths,
    read_records,
)
from worker.client.spool import Send, Spool
from worker.durable import claimed, fsync_dir
from worker.errors import BrokerUnavailable

logger = logging.getLogger("callstore.recovery")

INTERRUPTED_NOTE = "the runtime process ended mid-call; recovered from its journal"


@dataclass(slots=True)
class RecoveryResult:
    """What one pass over the journals did."""

    recovered: int = 0
    spooled: int = 0
    live: int = 0
    corrupt: int = 0
    #: Recovered with a damaged tail dropped (the log line says what).
    damaged: int = 0
    broker_error: str | None = None
    call_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Recovered:
    payload: dict[str, Any]
    entries: int
    read: JournalRead


def payload_from(read: JournalRead, *, now: datetime | None = None) -> Recovered | None:
    """The call a journal holds, as a payload; None when even its header is unreadable."""
    records = read.records
    if not records or records[0].get("t") != HEADER or not isinstance(records[0].get("f"), dict):
        return None
    data = CallData(fields=dict(records[0]["f"]))
    newest = int(records[0].get("w", 0))
    final: dict[str, Any] | None = None
    entries = 0
    for record in records[1:]:
        kind = record["t"]
        if kind == ENTRY:
            data.lists[record["l"]].append(record["e"])
            entries += 1
        elif kind == SET:
            data.fields.update(record["f"])
        elif kind == FINAL:
            final = record
        elif kind == CHECKPOINT:
            newest = max(newest, int(record["r"]))
        if "x" in record:
            data.fields["replaced_characters"] = record["x"]
        newest = max(newest, int(record.get("w", 0)))
    finalized_at = (now or datetime.now(UTC)).isoformat()
    if final is not None:
        status, ended_at = final["status"], final["ended_at"]
        note = data.fields.get("error_message")
    else:
        status, ended_at = CallStatus.INTERRUPTED.value, data.last_stamp()
        parts = [data.fields.get("error_message"), INTERRUPTED_NOTE]
        if read.damage:
            parts.append(
                f"a damaged tail was dropped ({read.damage}; {read.dropped_lines} line(s), "
                f"{read.dropped_bytes} bytes)"
            )
        note = "; ".join(p for p in parts if p)
    payload = data.payload(
        revision=newest + 1,
        status=status,
        ended_at=ended_at,
        finalized_at=finalized_at,
        error_message=note,
    )
    return Recovered(payload, entries, read)


def recover_orphans(spool: Spool, send: Send) -> RecoveryResult:
    """Hand off the call of every orphaned journal of ``spool``, oldest first; stop at a spool
    that cannot be written (the journals wait for the next pass)."""
    result = RecoveryResult()
    for path in journal_paths(spool.directory):
        with claimed(path) as fd:
            if fd is None:
                if path.exists():
                    result.live += 1
                continue
            with os.fdopen(os.dup(fd), "rb") as handle:
                read = read_records(handle.read())
            recovered = payload_from(read)
            if recovered is None:
                _set_aside(path)
                result.corrupt += 1
                logger.error("call journal unreadable; set aside", extra={"journal": str(path)})
                continue
            try:
                how = _hand_off(spool, send, recovered.payload)
            except OSError as error:
                logger.error(
                    "recovered call could be neither enqueued nor spooled; journal kept",
                    extra={"journal": str(path), "spool_error": str(error)},
                )
                break
            if how == "spooled":
                result.spooled += 1
                result.broker_error = "broker unavailable"
            path.unlink()
            fsync_dir(path.parent)
        result.recovered += 1
        result.call_ids.append(recovered.payload["call_id"])
        if read.damage:
            result.damaged += 1
        logger.warning(
            "call of a dead runtime process recovered from its journal",
            extra={
                "call_id": recovered.payload["call_id"],
                "revision": recovered.payload["revision"],
                "status": recovered.payload["status"],
                "entries": recovered.entries,
                "delivery": how,
                "dropped": read.damage,
                "dropped_bytes": read.dropped_bytes,
            },
        )
    return result


def _hand_off(spool: Spool, send: Send, payload: dict[str, Any]) -> str:
    """Publish and keep in the outbox, or spool; raises ``OSError`` when it can do neither."""
    call_id, revision = payload["call_id"], payload["revision"]
    try:
        send(TASK_NAME, QUEUE, [payload])
    except BrokerUnavailable as error:
        spool.put(TASK_NAME, QUEUE, [payload], reason=str(error), key=call_id)
        return "spooled"
    try:
        spool.record_sent(TASK_NAME, QUEUE, [payload], key=call_id, revision=revision)
    except OSError as error:  # enqueued all the same; only the broker's window is open
        logger.warning(
            "recovered call enqueued but not kept in the outbox",
            extra={"call_id": call_id, "outbox_error": str(error)},
        )
    return "enqueued"


def _set_aside(path: Path) -> None:
    """An unreadable journal goes to ``journal/corrupt/`` where an operator sees it."""
    corrupt = path.parent / CORRUPT_DIR
    corrupt.mkdir(exist_ok=True, mode=0o700)
    shutil.move(str(path), corrupt / path.name)
    fsync_dir(path.parent)
