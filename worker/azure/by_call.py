"""The records of single calls, by call SID: read with point queries, and migrated again.

The consistency check reads this way the calls that changed since its last run, and its
repair migrates a call that differs (or is missing) again, through the migration's own
transforms and writer: the same rows a batch would write, idempotently. Unlike a batch, a
call migrated again is made exactly what Azure holds: entries the store has and Azure does not
are removed (a batch never removes anything, because a pass reads only what changed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from azure.core.exceptions import ResourceNotFoundError
from psycopg import sql

from worker.azure import sources
from worker.azure.client import AzureStorage, translate_azure_errors
from worker.azure.readers import TableRecord, to_record
from worker.azure.transforms import (
    CALL_SID,
    CallRow,
    EntryRow,
    Reject,
    call_id_for,
    raw_text,
    transform_page,
)
from worker.azure.writer import ENTRY_TABLES, WriteOutcome, Writer
from worker.maintenance.partitions import ensure_partitions, month_start

_SEQUENCE = re.compile(r"\d{1,9}")  # as ``transforms.transcript_entry`` reads a RowKey

#: Point reads in flight at once (the SDK's clients are safe to share between threads).
READERS = 8


@dataclass(slots=True)
class CallRecords:
    """What Azure holds of one call: its CallHistory entities (normally one) and its
    CallTranscripts entities, each in key order."""

    sid: str
    history: list[TableRecord] = field(default_factory=list)
    entries: list[TableRecord] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.history or self.entries)


def read_calls(
    storage: AzureStorage,
    sids: Iterable[str],
    *,
    customers: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, CallRecords]:
    """The records of each call. ``customers[sid]`` names the PartitionKeys its CallHistory
    entity may have (point reads); a call missing from ``customers`` is looked up by RowKey,
    which Azure answers by scanning the table: fine for a repair, not for a routine check."""
    wanted = sorted(set(sids))

    def read(sid: str) -> CallRecords:
        found = CallRecords(sid)
        found.entries = _query(
            storage, sources.CALL_TRANSCRIPTS.name, "PartitionKey eq @sid", {"sid": sid}
        )
        keys = None if customers is None or sid not in customers else sorted(set(customers[sid]))
        if keys is None:
            found.history = _query(
                storage, sources.CALL_HISTORY.name, "RowKey eq @sid", {"sid": sid}
            )
        else:
            found.history = [r for key in keys if (r := _entity(storage, key, sid)) is not None]
        return found

    if len(wanted) <= 1:
        return {sid: read(sid) for sid in wanted}
    with ThreadPoolExecutor(max_workers=min(READERS, len(wanted))) as pool:
        return {records.sid: records for records in pool.map(read, wanted)}


def _query(
    storage: AzureStorage, table: str, query: str, parameters: dict[str, Any]
) -> list[TableRecord]:
    with translate_azure_errors(f"reading table {table}"):
        try:
            entities = storage.table(table).query_entities(query, parameters=parameters)
            return sorted(
                (to_record(e) for e in entities), key=lambda r: (r.partition_key, r.row_key)
            )
        except ResourceNotFoundError:
            return []


def _entity(storage: AzureStorage, partition_key: str, sid: str) -> TableRecord | None:
    table = sources.CALL_HISTORY.name
    with translate_azure_errors(f"reading table {table}"):
        try:
            return to_record(storage.table(table).get_entity(partition_key, sid))
        except ResourceNotFoundError:
            return None


# -- migrating again -------------------------------------------------------------------------


@dataclass(slots=True)
class Remigrated:
    """What migrating calls again changed."""

    calls: int = 0
    changed: int = 0
    removed: int = 0
    rejected: int = 0
    absent: list[str] = field(default_factory=list)

    def describe(self) -> str:
        entries = "entry" if self.removed == 1 else "entries"
        line = (
            f"migrated {self.calls} call(s) again from Azure: {self.changed} record(s) written,"
            f" {self.removed} stored {entries} that Azure does not hold removed,"
            f" {self.rejected} reject(s) kept"
        )
        if self.absent:
            line += f"; not in Azure any more, left as they are: {', '.join(self.absent)}"
        return line


_DELETE_EXTRA = {
    kind: sql.SQL(
        "DELETE FROM {table} t WHERE t.call_id = ANY(%(ids)s) AND NOT EXISTS ("
        " SELECT 1 FROM unnest(%(kept_ids)s::uuid[], %(kept_sequences)s::int[]) AS k(call_id, sequence)"
        " WHERE k.call_id = t.call_id AND k.sequence = t.sequence)"
        " RETURNING t.call_id"
    ).format(table=sql.Identifier(table))
    for kind, (table, _same) in ENTRY_TABLES.items()
}


def remigrate(conn: psycopg.Connection[Any], found: Mapping[str, CallRecords]) -> Remigrated:
    """Migrate the calls of ``found`` again, on ``conn`` (not in autocommit): the partitions
    their messages need in a short transaction, then everything else in one."""
    result = Remigrated()
    present = {sid: records for sid, records in found.items() if records.exists}
    result.absent = sorted(sid for sid in found if sid not in present)
    if not present:
        return result
    history = [r for records in present.values() for r in records.history]
    entries = [r for records in present.values() for r in records.entries]
    calls = transform_page(sources.CALL_HISTORY.name, list(history))
    timeline = transform_page(sources.CALL_TRANSCRIPTS.name, list(entries))
    entry_rows = [row for row in timeline.rows if isinstance(row, EntryRow)]
    months = {month_start(row.timestamp) for row in entry_rows if row.kind == "message"}
    with conn.transaction():
        ensure_partitions(conn, months=months, tables=["call_messages"])
    with conn.transaction():
        writer = Writer(conn)
        call_rows = [row for row in calls.rows if isinstance(row, CallRow)]
        written_calls = writer.calls(call_rows) if call_rows else WriteOutcome()
        written = writer.entries(entry_rows) if entry_rows else WriteOutcome()
        ids = [call_id_for(sid) for sid in present if CALL_SID.fullmatch(sid)]
        removed = _remove_extra(conn, ids, entries)
        writer.finish_calls(ids)
        result.rejected = _keep_rejects(
            writer, sources.CALL_HISTORY.name, history, calls.rejects, written_calls
        ) + _keep_rejects(writer, sources.CALL_TRANSCRIPTS.name, entries, timeline.rejects, written)
        result.calls = len(ids)
        result.changed = written_calls.migrated + written.migrated
        result.removed = len(removed)
    return result


def _remove_extra(
    conn: psycopg.Connection[Any], ids: Sequence[uuid.UUID], entries: Sequence[TableRecord]
) -> set[uuid.UUID]:
    """Remove the stored entries of ``ids`` that Azure holds no entity for. An entity that is a
    reject keeps its stored entry (the check leaves rejected records out on both sides)."""
    kept = sorted(
        {
            (call_id_for(r.partition_key), int(r.row_key))
            for r in entries
            if CALL_SID.fullmatch(r.partition_key) and _SEQUENCE.fullmatch(r.row_key)
        }
    )
    params = {
        "ids": list(ids),
        "kept_ids": [k[0] for k in kept],
        "kept_sequences": [k[1] for k in kept],
    }
    removed: set[uuid.UUID] = set()
    for statement in _DELETE_EXTRA.values():
        removed.update(row[0] for row in conn.execute(statement, params).fetchall())
    return removed


def _keep_rejects(
    writer: Writer,
    source: str,
    records: Sequence[TableRecord],
    rejects: Sequence[Reject],
    written: WriteOutcome,
) -> int:
    """Keep the rejects of ``records`` as a batch does, and resolve those that migrated."""
    by_key = {r.key: r for r in records}
    kept = list(rejects)
    for problem in written.problems:
        record = by_key[problem.record_key]
        kept.append(
            Reject(
                source,
                problem.record_key + problem.suffix,
                raw_text(record),
                problem.reason,
                record.timestamp,
            )
        )
    changed = writer.rejects(kept) if kept else set()
    failed = {r.key for r in rejects} | {p.record_key for p in written.problems}
    writer.resolve(source, [key for key in by_key if key not in failed])
    return len(changed)
