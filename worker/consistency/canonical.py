"""The canonical form of a migrated call, spoken identically by Azure and by PostgreSQL.

A call is compared as three digests: its *header* (what its CallHistory entity became: the
customer, the times, the other fields), its *entries* (every transcript entry, whichever of
the three tables it landed in, in sequence order) and the two combined. The Azure side builds
them in Python from the rows the migration's own transforms make of each entity
(``worker.azure.transforms``); the PostgreSQL side builds them in SQL from the stored rows
(``worker.consistency.store_digests``). Both render each value as PostgreSQL renders JSON
(``json_build_array(...)::text``, ``jsonb::text``), so a call stored exactly as migrated gives
the same digests on both sides, byte for byte; ``jsonb_text`` is that rendering in Python.

Records the migration could not take are left out on both sides: on the Azure side the
entities whose key has an open reject in ``migration_rejects`` (and those the transforms
refuse), on the PostgreSQL side the entries whose key has an open reject, and the header of a
call whose own CallHistory entity has one (or that was made from its entries alone).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from worker.azure.transforms import CallRow, EntryRow, call_id_for

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

#: Entry kinds by the legacy ``entry_type`` names (the keys of the per-type counts).
KIND_NAMES = {"message": "transcript", "tool": "tool", "event": "event"}
ENTRY_TYPES = ("transcript", "tool", "event")

#: The header of a call without a CallHistory entity of its own (made from its entries, or
#: whose entity is a reject).
HEADLESS = "null"


def md5(text: str) -> str:
    # surrogatepass: a lone surrogate (which PostgreSQL would refuse) must not crash a check.
    return hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


EMPTY_MD5 = md5("")


def micros(value: datetime | None) -> int | None:
    """Microseconds since the epoch: ``(extract(epoch FROM t) * 1000000)::bigint`` in SQL."""
    return None if value is None else (value - EPOCH) // _MICROSECOND


def jsonb_text(value: Any) -> str:
    """``value`` as PostgreSQL prints it once stored as ``jsonb`` (and as ``json_build_array``
    prints its arguments): object keys shorter first, then bytewise; ``", "`` and ``": "``
    between items; numbers as ``numeric`` prints them. A float is what psycopg sends (its
    ``repr``), which ``numeric`` then prints without an exponent, and never as ``-0``."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _numeric(Decimal(repr(value)))
    if isinstance(value, Decimal):
        return _numeric(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(jsonb_text(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=_key_order)
        return (
            "{"
            + ", ".join(
                json.dumps(k, ensure_ascii=False) + ": " + jsonb_text(value[k]) for k in keys
            )
            + "}"
        )
    raise TypeError(f"{type(value).__name__} is not JSON")


def _key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode("utf-8", "surrogatepass")
    return len(encoded), encoded


def _numeric(number: Decimal) -> str:
    if number.is_zero():
        number = number.copy_abs()
    return format(number, "f")


def header_text(row: CallRow) -> str:
    """The header of a call as its CallHistory entity makes it."""
    return jsonb_text(
        [
            row.legacy_customer_id,
            micros(row.started_at),
            micros(row.ended_at),
            row.duration_seconds,
            row.call_type,
            row.direction,
            row.status,
            row.conversation_id,
            row.outcome,
            row.agent_name,
            row.extra,
        ]
    )


def entry_text(row: EntryRow) -> str:
    """One transcript entry, as the table it lands in holds it."""
    kind = KIND_NAMES[row.kind]
    common: list[Any] = [row.sequence, kind, micros(row.timestamp)]
    if row.kind == "message":
        return jsonb_text([*common, row.role, row.content])
    if row.kind == "tool":
        return jsonb_text(
            [
                *common,
                row.tool_name,
                row.request,
                row.response,
                row.request_text,
                row.response_text,
                row.success,
                row.duration_ms,
            ]
        )
    return jsonb_text([*common, row.event_type, row.event_data, row.event_data_text])


@dataclass(frozen=True, slots=True)
class CallDigest:
    """What is compared of one call; the same on both sides when the call is whole."""

    sid: str
    headless: bool
    customer: str | None
    started_us: int | None
    transcripts: int
    tools: int
    events: int
    header_md5: str
    entries_md5: str
    #: Azure side only: the newest service ``Timestamp`` among the call's entities.
    newest: datetime | None = None

    @property
    def digest(self) -> str:
        return md5(self.header_md5 + self.entries_md5)

    @property
    def call_id(self) -> str:
        return str(call_id_for(self.sid))

    def counts(self) -> dict[str, int]:
        return {"transcript": self.transcripts, "tool": self.tools, "event": self.events}


@dataclass(frozen=True, slots=True)
class Header:
    """The header of a call whose CallHistory entity the migration takes."""

    md5: str
    customer: str
    started_us: int | None

    @classmethod
    def of(cls, row: CallRow) -> Header:
        return cls(md5(header_text(row)), row.legacy_customer_id, micros(row.started_at))


def azure_digest(
    sid: str,
    header: Header | None,
    entries: Iterable[EntryRow],
    *,
    newest: datetime | None = None,
) -> CallDigest | None:
    """The digest of a call from what its Azure entities become; None when nothing of it
    would be stored (no CallHistory entity and no entry the migration takes)."""
    by_sequence: dict[int, EntryRow] = {}
    for entry in entries:  # in key order; a sequence read twice: the later one, as the writer
        by_sequence[entry.sequence] = entry
    if header is None and not by_sequence:
        return None
    ordered = sorted(by_sequence.values(), key=lambda e: (e.sequence, KIND_NAMES[e.kind]))
    counts = dict.fromkeys(ENTRY_TYPES, 0)
    for entry in ordered:
        counts[KIND_NAMES[entry.kind]] += 1
    return CallDigest(
        sid=sid,
        headless=header is None,
        customer=None if header is None else header.customer,
        started_us=None if header is None else header.started_us,
        transcripts=counts["transcript"],
        tools=counts["tool"],
        events=counts["event"],
        header_md5=md5(HEADLESS) if header is None else header.md5,
        entries_md5=md5("\n".join(entry_text(e) for e in ordered)),
        newest=newest,
    )


def aspects(azure: CallDigest, postgres: CallDigest) -> list[str]:
    """Which aspects of a call differ between the two sides."""
    found = []
    if azure.headless != postgres.headless:
        found.append("call_history")
    elif not azure.headless:
        if azure.started_us != postgres.started_us:
            found.append("started_at")
        if azure.customer != postgres.customer:
            found.append("customer")
        if azure.header_md5 != postgres.header_md5 and not found:
            found.append("call_fields")
    for kind, count in azure.counts().items():
        if postgres.counts()[kind] != count:
            found.append(f"{kind}_entries")
    if azure.entries_md5 != postgres.entries_md5:
        found.append("content")
    return found


def describe(azure: CallDigest, postgres: CallDigest, found: Sequence[str]) -> str:
    """The differences of ``aspects`` in words, with both sides' values."""
    parts = []
    for aspect in found:
        if aspect == "call_history":
            side = "Azure" if not azure.headless else "PostgreSQL"
            parts.append(f"only {side} has the call's CallHistory record")
        elif aspect == "started_at":
            parts.append(
                f"started_at: Azure {_when(azure.started_us)}, PostgreSQL {_when(postgres.started_us)}"
            )
        elif aspect == "customer":
            parts.append(f"customer: Azure {azure.customer!r}, PostgreSQL {postgres.customer!r}")
        elif aspect == "call_fields":
            parts.append("other CallHistory fields differ")
        elif aspect.endswith("_entries"):
            kind = aspect.removesuffix("_entries")
            parts.append(
                f"{kind} entries: Azure {azure.counts()[kind]}, PostgreSQL {postgres.counts()[kind]}"
            )
        elif aspect == "content":
            parts.append("entry content differs")
    return "; ".join(parts)


def _when(value: int | None) -> str:
    return "none" if value is None else (EPOCH + value * _MICROSECOND).isoformat()
