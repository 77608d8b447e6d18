"""Invariants of the call store, each a generator of precise discrepancies.

Incremental runs look only at what changed since the watermark: calls by ``updated_at`` (set
on insert and kept current by a trigger), timeline rows by their partition key (so partitions
that cannot hold new rows are not read), small children by ``created_at``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from psycopg import sql

from models.base import PARTITIONED_TABLES
from worker.calls.summary import RECOMPUTE_SQL, SUMMARY_COLUMNS
from worker.client.spool import Spool
from worker.consistency.types import CheckContext, Discrepancy
from worker.maintenance.partitions import add_months, list_partitions, month_start

#: How much earlier than the watermark an incremental run looks, for rows whose timestamps
#: precede their commit (a call's messages are stamped before it is finalized).
LOOKBACK = timedelta(days=2)
BATCH = 1000
UNPARTITIONED_CHILDREN = (
    "call_transcripts", "call_rag_chunks", "call_extracted_variables", "call_analysis",
    "call_user_interruptions", "call_tool_executions", "call_events",
)  # fmt: skip


def _changed_calls(ctx: CheckContext) -> Iterator[list[Any]]:
    """Call ids to examine, in batches: all of them, or those changed since the watermark.

    A full run pages through the primary key, so no snapshot is held across the whole table.
    An incremental run asks for the changed ids at once, which the BRIN index on ``updated_at``
    answers by reading only the recent block ranges (paging by ``call_id`` instead would make
    the planner walk the primary key and filter, i.e. read every call).
    """
    if ctx.since is not None:
        ids = [
            row[0]
            for row in ctx.conn.execute(
                "SELECT call_id FROM calls WHERE updated_at >= %s", [ctx.since]
            ).fetchall()
        ]
        ids.sort()
        for start in range(0, len(ids), BATCH):
            yield ids[start : start + BATCH]
        return
    last = None
    while True:
        query = sql.SQL("SELECT call_id FROM calls WHERE {} ORDER BY call_id LIMIT {}").format(
            sql.SQL("call_id > %s") if last is not None else sql.SQL("TRUE"), sql.Literal(BATCH)
        )
        rows = ctx.conn.execute(query, [last] if last is not None else []).fetchall()
        if not rows:
            return
        yield [row[0] for row in rows]
        last = rows[-1][0]


def summaries(ctx: CheckContext) -> Iterator[Discrepancy]:
    """The 21 summary metrics of each call equal their recomputation from its children."""
    columns = ", ".join(f"c.{c}" for c in SUMMARY_COLUMNS)
    recomputed = ", ".join(f"s.{c}" for c in SUMMARY_COLUMNS)
    query = f"""
        SELECT c.call_id, {columns}, {recomputed}
          FROM calls c JOIN ({RECOMPUTE_SQL}) s ON s.call_id = c.call_id
         WHERE ({columns}) IS DISTINCT FROM ({recomputed})
    """
    examined = 0
    for ids in _changed_calls(ctx):
        examined += len(ids)
        for row in ctx.conn.execute(query, {"call_ids": ids}).fetchall():
            n = len(SUMMARY_COLUMNS)
            stored, fresh = row[1 : 1 + n], row[1 + n :]
            wrong = {
                column: {"stored": _plain(a), "recomputed": _plain(b)}
                for column, a, b in zip(SUMMARY_COLUMNS, stored, fresh, strict=True)
                if a != b
            }
            yield Discrepancy(
                "summaries",
                "summary_mismatch",
                {"call_id": str(row[0]), "columns": sorted(wrong)},
                "; ".join(
                    f"{c}: stored {v['stored']}, children say {v['recomputed']}"
                    for c, v in wrong.items()
                ),
                repairable=True,
            )
    ctx.stats["summaries_examined"] = examined


def _plain(value: Any) -> Any:
    return None if value is None else str(value)


def transcripts(ctx: CheckContext) -> Iterator[Discrepancy]:
    """Every call that has a message has its transcript: the rule every writer follows
    (``worker.calls.transcripts``), live or migrated; a call without messages has none."""
    query = sql.SQL(
        "SELECT c.call_id FROM calls c WHERE {} AND NOT EXISTS"
        " (SELECT 1 FROM call_transcripts t WHERE t.call_id = c.call_id)"
        " AND EXISTS (SELECT 1 FROM call_messages m WHERE m.call_id = c.call_id)"
    ).format(sql.SQL("c.updated_at >= %s") if ctx.since else sql.SQL("TRUE"))
    params = [ctx.since] if ctx.since else []
    for (call_id,) in ctx.conn.execute(query, params).fetchall():
        yield Discrepancy(
            "transcripts",
            "missing_transcript",
            {"call_id": str(call_id)},
            "the call has no row in call_transcripts",
            repairable=True,
        )


def _orphans_in(ctx: CheckContext, table: str, time_column: str) -> Iterator[Discrepancy]:
    window: sql.Composable = sql.SQL("TRUE")
    params: list[Any] = []
    if ctx.since is not None:
        window = sql.SQL("t.{} >= %s").format(sql.Identifier(time_column))
        params.append(ctx.since - LOOKBACK)
    query = sql.SQL(
        "SELECT t.call_id, count(*) FROM {table} t WHERE {window} AND NOT EXISTS"
        " (SELECT 1 FROM calls c WHERE c.call_id = t.call_id) GROUP BY t.call_id"
    ).format(table=sql.Identifier(table), window=window)
    for call_id, count in ctx.conn.execute(query, params).fetchall():
        yield Discrepancy(
            "orphans",
            "orphan_rows",
            {"table": table, "call_id": str(call_id), "rows": count},
            f"{count} row(s) in {table} belong to a call that is not in calls",
        )


def orphans(ctx: CheckContext) -> Iterator[Discrepancy]:
    """No child row without its call; no RAG chunk without its retrieval."""
    for table in PARTITIONED_TABLES:
        yield from _orphans_in(ctx, table, "timestamp")
    for table in UNPARTITIONED_CHILDREN:
        yield from _orphans_in(ctx, table, "created_at")
    window = sql.SQL("ch.created_at >= %s") if ctx.since else sql.SQL("TRUE")
    query = sql.SQL(
        "SELECT ch.call_id, ch.retrieval_id, count(*) FROM call_rag_chunks ch WHERE {} AND NOT EXISTS"
        " (SELECT 1 FROM call_rag_retrievals r WHERE r.id = ch.retrieval_id"
        "  AND r.timestamp = ch.retrieval_timestamp) GROUP BY ch.call_id, ch.retrieval_id"
    ).format(window)
    params = [ctx.since - LOOKBACK] if ctx.since else []
    for call_id, retrieval_id, count in ctx.conn.execute(query, params).fetchall():
        yield Discrepancy(
            "orphans",
            "orphan_chunks",
            {"call_id": str(call_id), "retrieval_id": str(retrieval_id), "rows": count},
            f"{count} chunk(s) point at a retrieval that does not exist",
        )


def partition_horizon(ctx: CheckContext) -> Iterator[Discrepancy]:
    """Each partitioned table has partitions from this month to the configured months ahead,
    and no rows wait in a DEFAULT partition."""
    current = month_start(ctx.now)
    wanted = [add_months(current, n) for n in range(ctx.settings.partition_premake_months + 1)]
    partitions = list_partitions(ctx.conn)
    for table in PARTITIONED_TABLES:
        have = {p.month for p in partitions if p.table == table}
        for month in wanted:
            if month not in have:
                yield Discrepancy(
                    "partition_horizon",
                    "missing_partition",
                    {"table": table, "month": month.isoformat()[:7]},
                    f"{table} has no partition for {month:%Y-%m}",
                    repairable=True,
                )
    for partition in partitions:
        if partition.is_default:
            row = ctx.conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(partition.name))
            ).fetchone()
            rows = int(row[0]) if row else 0
            if rows:
                yield Discrepancy(
                    "partition_horizon",
                    "default_partition_rows",
                    {"table": partition.table, "partition": partition.name, "rows": rows},
                    f"{rows} row(s) wait in the DEFAULT partition {partition.name}",
                )


def stuck_calls(ctx: CheckContext) -> Iterator[Discrepancy]:
    """No call stays ``in_progress`` longer than the threshold, and no checkpointed call stops
    being checkpointed.

    A call ``in_progress`` that started more than ``CALLSTORE_CHECK_STUCK_AFTER_SECONDS`` ago is
    stuck. Otherwise, one whose last ``in_progress`` revision (a checkpoint) was stored more than
    ``CALLSTORE_CHECK_STALE_IN_PROGRESS_SECONDS`` ago is stale in progress, reported with that
    time: its runtime neither finalized it nor checkpointed it since, and no journal of it was
    recovered, so its host was lost with the spool (the checkpoint is what remains). Calls
    migrated from Azure are left out: their status is the legacy system's
    (``metadata.legacy_status``), which no longer runs, and the Azure comparison checks it.
    """
    stuck_before = ctx.now - timedelta(seconds=ctx.settings.check_stuck_after_seconds)
    stale_before = ctx.now - timedelta(seconds=ctx.settings.check_stale_in_progress_seconds)
    rows = ctx.conn.execute(
        "SELECT call_id, started_at, persisted_at FROM calls WHERE status = 'in_progress'"
        " AND source <> 'azure' AND (started_at < %s OR persisted_at < %s) ORDER BY started_at",
        (stuck_before, stale_before),
    ).fetchall()
    for call_id, started_at, checkpointed_at in rows:
        if started_at < stuck_before:
            yield Discrepancy(
                "stuck_calls",
                "stuck_in_progress",
                {"call_id": str(call_id), "started_at": started_at.isoformat()},
                f"in_progress since {started_at.isoformat()}",
            )
            continue
        yield Discrepancy(
            "stuck_calls",
            "stale_in_progress",
            {
                "call_id": str(call_id),
                "started_at": started_at.isoformat(),
                "last_checkpoint_at": checkpointed_at.isoformat(),
            },
            f"in_progress, last checkpoint stored {checkpointed_at.isoformat()}, neither "
            "finalized nor recovered since: its runtime's host was lost",
        )


def unfinalized_calls(ctx: CheckContext) -> Iterator[Discrepancy]:
    """Every announced call was finalized within the threshold (else its runtime died)."""
    # Settle announcements whose call did arrive (a race the finalize path cannot see).
    ctx.conn.execute("DELETE FROM call_announcements a USING calls c WHERE c.call_id = a.call_id")
    limit = ctx.now - timedelta(seconds=ctx.settings.check_unfinalized_after_seconds)
    rows = ctx.conn.execute(
        "SELECT call_id, tenant_id, started_at FROM call_announcements WHERE announced_at < %s"
        " ORDER BY announced_at",
        (limit,),
    ).fetchall()
    for call_id, tenant_id, started_at in rows:
        yield Discrepancy(
            "unfinalized_calls",
            "never_finalized",
            {
                "call_id": str(call_id),
                "tenant_id": str(tenant_id),
                "started_at": started_at.isoformat(),
            },
            f"announced at start ({started_at.isoformat()}) and never finalized",
        )


def spool(ctx: CheckContext) -> Iterator[Discrepancy]:
    """No finalized call waits in this host's spool longer than the threshold."""
    now = ctx.now.timestamp()
    for path in Spool(ctx.settings.spool_dir).paths():
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > ctx.settings.check_spool_age_seconds:
            yield Discrepancy(
                "spool",
                "stale_spool_file",
                {"file": path.name, "age_seconds": int(age)},
                f"spooled {int(age)} s ago and not yet delivered to the broker",
                repairable=True,
            )


def dead_letters(ctx: CheckContext) -> Iterator[Discrepancy]:
    """The dead-letter backlog: each pending payload, oldest first."""
    rows = ctx.conn.execute(
        "SELECT id, call_id, error_class, first_seen_at FROM failed_payloads"
        " WHERE status = 'pending' ORDER BY first_seen_at LIMIT 1000"
    ).fetchall()
    for dead_id, call_id, error_class, first_seen in rows:
        yield Discrepancy(
            "dead_letters",
            "dead_letter_pending",
            {"dead_letter_id": str(dead_id), "call_id": str(call_id) if call_id else None},
            f"{error_class} since {first_seen.isoformat()}; see `callstore dead-letter show {dead_id}`",
        )


def revision_conflicts(ctx: CheckContext) -> Iterator[Discrepancy]:
    """Deliveries of a stored (call id, revision) with other content (``call_conflicts``),
    each with what the rule kept; the losing delivery, when it was the incoming one, is in the
    dead letters."""
    window = sql.SQL("seen_at >= %s") if ctx.since else sql.SQL("TRUE")
    query = sql.SQL(
        "SELECT call_id, revision, kept, stored_digest, incoming_digest, seen_at"
        " FROM call_conflicts WHERE {} ORDER BY seen_at LIMIT 1000"
    ).format(window)
    for call_id, revision, kept, stored, incoming, seen_at in ctx.conn.execute(
        query, [ctx.since] if ctx.since else []
    ).fetchall():
        lost = "the content stored before" if kept == "incoming" else "the delivery"
        yield Discrepancy(
            "revision_conflicts",
            "revision_conflict",
            {"call_id": str(call_id), "revision": revision, "kept": kept},
            f"revision {revision} arrived twice with other content ({stored[:12]} stored,"
            f" {incoming[:12]} delivered) at {seen_at.isoformat()}; {lost} lost by the rule"
            " (the later finalized_at, then the greater digest)",
        )


#: Every check of the call store, by name, in the order they run.
STORE_CHECKS = {
    "summaries": summaries,
    "transcripts": transcripts,
    "orphans": orphans,
    "partition_horizon": partition_horizon,
    "stuck_calls": stuck_calls,
    "unfinalized_calls": unfinalized_calls,
    "spool": spool,
    "dead_letters": dead_letters,
    "revision_conflicts": revision_conflicts,
}
