"""Azure against PostgreSQL, while the migration and the dual-write last.

Two checks, run only where ``CALLSTORE_AZURE_CONNECTION_STRING`` is set:

* ``azure_calls``: every call, as a canonical digest computed from Azure while reading (through
  the migration's own transforms) and from PostgreSQL in SQL. A full run compares them by key
  range with bisection (``rangediff``), so a clean run compares one digest per range, never
  row by row; an incremental run re-reads only the Azure entities written since the watermark
  (less the migration's overlap window) and the migrated calls PostgreSQL changed since, and
  compares those calls directly.
* ``azure_counts`` (full runs): entities per source against what PostgreSQL holds of them,
  accounting for ``migration_rejects``.

Rejected records are left out on both sides; runtime calls are never compared (a call
recorded by both systems during the dual-write period is two calls by design).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg

from worker.azure import sources
from worker.azure.by_call import read_calls
from worker.azure.client import AzureStorage, storage_from_settings
from worker.azure.readers import count_ahead
from worker.consistency import rangediff, store_digests
from worker.consistency.azure_digests import (
    AzureCalls,
    changed_since,
    digest_records,
    open_rejects,
    read_all,
)
from worker.consistency.canonical import CallDigest, aspects, describe
from worker.consistency.types import CheckContext, Discrepancy
from worker.errors import AzureUnavailable
from worker.settings import Settings

CHECK_CALLS = "azure_calls"
CHECK_COUNTS = "azure_counts"
NOT_CONFIGURED = "CALLSTORE_AZURE_CONNECTION_STRING is not set, so Azure was not compared"
_BATCH_HINT = "; the batch will be retried from its checkpoint"
_COUNT_CAP = 10**12


def configured(settings: Settings) -> bool:
    secret = settings.azure_connection_string
    return secret is not None and bool(secret.get_secret_value().strip())


@contextmanager
def _azure(settings: Settings) -> Iterator[AzureStorage]:
    """The legacy account; a failure to reach it says it was the Azure comparison."""
    try:
        with storage_from_settings(settings) as storage:
            yield storage
    except AzureUnavailable as error:
        raise AzureUnavailable(
            f"Azure comparison: {str(error).replace(_BATCH_HINT, '')}"
        ) from error


class StoreSide:
    """PostgreSQL's side of the range comparison (``rangediff.Side``)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.statements = 0

    def buckets(self, lo: str, hi: str, bounds: Any) -> dict[int, tuple[int, str]]:
        self.statements += 1
        return store_digests.bucket_digests(self.conn, lo, hi, bounds)

    def calls(self, lo: str, hi: str) -> dict[str, str]:
        self.statements += 1
        return store_digests.call_digests(self.conn, lo, hi)


_STORE_CHANGED = """
SELECT twilio_call_sid FROM calls WHERE source = 'azure' AND updated_at >= %(since)s
"""
_STORE_CUSTOMERS = """
SELECT twilio_call_sid, legacy_customer_id FROM calls
 WHERE source = 'azure' AND twilio_call_sid = ANY(%(sids)s)
"""
_WATERMARKS = "SELECT source, watermark FROM migration_checkpoints"


def azure_calls(ctx: CheckContext) -> Iterator[Discrepancy]:
    """Every migrated call equals what Azure holds of it: entry counts by type, start time,
    customer, and the content of each entry and CallHistory field."""
    started = time.perf_counter()
    stats: dict[str, Any] = {}
    ctx.stats[CHECK_CALLS] = stats
    with _azure(ctx.settings) as storage:
        rejects = open_rejects(ctx.conn)
        if ctx.since is None:
            found = read_all(storage, rejects)
            ctx.shared[CHECK_CALLS] = found
            stats.update(mode="full", azure_read_seconds=round(found.seconds, 3))
            compare_started = time.perf_counter()
            store = StoreSide(ctx.conn)
            ranges = rangediff.diff(
                rangediff.SortedSide({sid: d.digest for sid, d in found.calls.items()}), store
            )
            missing, extra, differing = ranges.only_left, ranges.only_right, ranges.differing
            stats.update(ranges.stats())
            stats["statements"] = store.statements
            details = store_digests.call_details(ctx.conn, differing) if differing else {}
            stats["compare_seconds"] = round(time.perf_counter() - compare_started, 3)
        else:
            window = ctx.since - timedelta(seconds=ctx.settings.migration_overlap_seconds)
            changed, found = changed_since(storage, window, rejects)
            in_store = {
                row[0] for row in ctx.conn.execute(_STORE_CHANGED, {"since": window}).fetchall()
            }
            sids = sorted(set(changed) | in_store)
            customers: dict[str, set[str]] = {sid: set(changed.get(sid, ())) for sid in sids}
            for sid, legacy in ctx.conn.execute(_STORE_CUSTOMERS, {"sids": sids}).fetchall():
                if legacy is not None:
                    customers[sid].add(legacy)
            digest_records(read_calls(storage, sids, customers=customers), rejects, found)
            details = store_digests.call_details(ctx.conn, sids) if sids else {}
            missing = sorted(s for s in found.calls if s not in details)
            extra = sorted(s for s in details if s not in found.calls)
            differing = sorted(
                s
                for s in found.calls
                if s in details and found.calls[s].digest != details[s].digest
            )
            stats.update(
                mode="incremental",
                azure_since=window.isoformat(),
                changed_in_azure=len(changed),
                changed_in_postgres=len(in_store),
                calls_compared=len(sids),
            )
    stats.update(
        calls_in_azure=len(found.calls) if ctx.since is None else None,
        entities_read=sum(found.entities.values()),
        missing=len(missing),
        extra=len(extra),
        differing=len(differing),
        seconds=round(time.perf_counter() - started, 3),
    )
    if stats["calls_in_azure"] is None:
        del stats["calls_in_azure"]
    watermarks = _watermarks(ctx.conn)
    yield from _unmigrated(found)
    for sid in missing:
        yield Discrepancy(
            CHECK_CALLS,
            "azure_missing_in_postgres",
            {"call_sid": sid, "call_id": found.calls[sid].call_id},
            "in Azure, neither migrated nor rejected" + _pending(found.calls[sid], watermarks),
            repairable=True,
        )
    for sid in extra:
        yield Discrepancy(
            CHECK_CALLS,
            "azure_extra_in_postgres",
            {"call_sid": sid, "call_id": details[sid].call_id if sid in details else None},
            "a migrated call Azure no longer holds (deleted there, or all its records became"
            " rejects); the migration does not propagate deletions",
        )
    for sid in differing:
        ours, theirs = found.calls[sid], details[sid]
        found_aspects = aspects(ours, theirs)
        yield Discrepancy(
            CHECK_CALLS,
            "azure_call_differs",
            {"call_sid": sid, "call_id": ours.call_id, "aspects": found_aspects},
            describe(ours, theirs, found_aspects) + _pending(ours, watermarks),
            repairable=True,
        )


def _unmigrated(found: AzureCalls) -> Iterator[Discrepancy]:
    for (source, key), record in sorted(found.unmigrated.items()):
        keys: dict[str, Any] = {"source": source, "key": key}
        if record.sid is not None:
            keys["call_sid"] = record.sid
        yield Discrepancy(
            CHECK_CALLS,
            "azure_reject_missing",
            keys,
            f"the migration cannot take it ({record.reason}) and migration_rejects has no open"
            " reject for it",
            repairable=record.sid is not None,
        )


def _watermarks(conn: psycopg.Connection[Any]) -> dict[str, datetime | None]:
    return dict(conn.execute(_WATERMARKS).fetchall())


def _pending(call: CallDigest, watermarks: Mapping[str, datetime | None]) -> str:
    """A hint when the call changed in Azure after the migration's last completed pass."""
    marks = [watermarks.get(s.name) for s in (sources.CALL_HISTORY, sources.CALL_TRANSCRIPTS)]
    if call.newest is None:
        return ""
    known = [m for m in marks if m is not None]
    if len(known) == len(marks) and call.newest <= min(known):
        return ""
    return (
        " (written to Azure after the migration's last completed pass: the next migration"
        " batches may bring it)"
    )


_COUNTS = """
WITH open AS (SELECT source, key FROM migration_rejects WHERE resolved_at IS NULL),
rejected_entries AS MATERIALIZED (
    SELECT split_part(key, '/', 1) AS sid, split_part(key, '/', 2)::int AS sequence
      FROM open
     WHERE source = 'CallTranscripts' AND key ~ '^CA[0-9a-f]{32}/[0-9]{1,9}$'
),
azure_calls AS (SELECT call_id, twilio_call_sid AS sid FROM calls WHERE source = 'azure'),
entries AS (
    SELECT call_id, sequence FROM call_messages
    UNION ALL SELECT call_id, sequence FROM call_tool_executions
    UNION ALL SELECT call_id, sequence FROM call_events
)
SELECT 'behavioral-configs', count(*) FROM behavioral_tactics t
 WHERE NOT EXISTS (SELECT 1 FROM open o
                    WHERE o.source = 'behavioral-configs' AND o.key = t.name || '.json')
UNION ALL
SELECT 'prompts', count(DISTINCT name) FROM system_prompts p
 WHERE NOT EXISTS (SELECT 1 FROM open o WHERE o.source = 'prompts' AND o.key = p.name || '.txt')
UNION ALL
SELECT 'CustomerData', count(*) FROM customers c
 WHERE c.external_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM open o WHERE o.source = 'CustomerData' AND o.key = c.external_id || '/profile')
UNION ALL
SELECT 'OrganizationData', count(*) FROM organizations g
 WHERE g.external_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM open o WHERE o.source = 'OrganizationData' AND o.key = g.external_id || '/org')
UNION ALL
SELECT 'CallHistory', count(*) FROM calls c
 WHERE c.source = 'azure' AND NOT c.metadata ? 'legacy_origin' AND NOT EXISTS (
       SELECT 1 FROM open o
        WHERE o.source = 'CallHistory' AND o.key = c.legacy_customer_id || '/' || c.twilio_call_sid)
UNION ALL
SELECT 'CallTranscripts', count(*) FROM entries e JOIN azure_calls a ON a.call_id = e.call_id
 WHERE NOT EXISTS (SELECT 1 FROM rejected_entries r WHERE r.sid = a.sid AND r.sequence = e.sequence)
"""
#: Open rejects of whole records: a table entity's key is ``PartitionKey/RowKey`` (neither
#: can hold a slash); ``<key>/members/<customer>`` is a part of an organization.
_REJECTED = """
SELECT source, count(*) FROM migration_rejects
 WHERE resolved_at IS NULL
   AND (source IN ('behavioral-configs', 'prompts') OR key ~ '^[^/]*/[^/]*$')
 GROUP BY source
"""


def azure_counts(ctx: CheckContext) -> Iterator[Discrepancy]:
    """Each source holds as many records in Azure as PostgreSQL holds migrated or rejected."""
    if ctx.since is not None:
        ctx.stats[CHECK_COUNTS] = {"skipped": "counts are compared by full runs (--full)"}
        return
    read: AzureCalls | None = ctx.shared.get(CHECK_CALLS)
    in_azure: dict[str, int] = {}
    with _azure(ctx.settings) as storage:
        for source in sources.SOURCES:
            if read is not None and source.name in read.entities:
                in_azure[source.name] = read.entities[source.name]
            else:
                ahead = count_ahead(storage, source, newer_than=None, cap=_COUNT_CAP)
                in_azure[source.name] = ahead.count
    stored = dict(ctx.conn.execute(_COUNTS).fetchall())
    rejected = dict(ctx.conn.execute(_REJECTED).fetchall())
    stats: dict[str, Any] = {}
    ctx.stats[CHECK_COUNTS] = stats
    for source in sources.SOURCES:
        azure = in_azure[source.name]
        postgres, kept = int(stored.get(source.name, 0)), int(rejected.get(source.name, 0))
        stats[source.name] = {"azure": azure, "postgres": postgres, "rejected": kept}
        if azure != postgres + kept:
            gap = azure - postgres - kept
            yield Discrepancy(
                CHECK_COUNTS,
                "azure_count_mismatch",
                {"source": source.name, "azure": azure, "postgres": postgres, "rejected": kept},
                f"Azure holds {azure}, PostgreSQL {postgres} migrated and {kept} rejected: "
                + (
                    f"{gap} record(s) neither migrated nor rejected"
                    if gap > 0
                    else f"{-gap} more in PostgreSQL than Azure holds"
                ),
            )


#: The Azure checks by name, in the order they run (``azure_counts`` reuses what
#: ``azure_calls`` read).
AZURE_CHECKS = {CHECK_CALLS: azure_calls, CHECK_COUNTS: azure_counts}
