"""Repairing what a check found, where the fix is certain: migrate a call again from Azure
(it differs, is missing, or has a record whose reject was never kept), recompute summaries from
the children, rebuild a transcript from its messages, make missing partitions, deliver spooled
calls. Planned first (and printed by the dry run), then applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import psycopg

from worker.azure.by_call import read_calls, remigrate
from worker.azure.client import storage_from_settings
from worker.calls import transcripts
from worker.calls.summary import UPDATE_SQL
from worker.client.spool import Spool
from worker.consistency.types import Discrepancy
from worker.db import translate_database_errors
from worker.jobs import JobName, lock_key
from worker.maintenance.partitions import ensure_partitions
from worker.settings import Settings

#: Classes a call's migration from Azure repairs (``worker.consistency.azure``).
AZURE_REMIGRATED = ("azure_call_differs", "azure_missing_in_postgres", "azure_reject_missing")


@dataclass(frozen=True, slots=True)
class RepairAction:
    kind: str
    targets: tuple[str, ...]
    description: str


def plan(discrepancies: Sequence[Discrepancy]) -> list[RepairAction]:
    """What a repair would change, one action per class of damage."""
    by_kind: dict[str, list[Discrepancy]] = defaultdict(list)
    for d in discrepancies:
        if d.repairable:
            by_kind[d.kind].append(d)
    actions = []
    azure = [
        d.keys["call_sid"]
        for kind in AZURE_REMIGRATED
        for d in by_kind.get(kind, ())
        if d.keys.get("call_sid")
    ]
    if azure:
        sids = tuple(sorted(set(azure)))
        actions.append(
            RepairAction(
                "azure_remigrate",
                sids,
                f"migrate {len(sids)} call(s) again from Azure (its CallHistory entity and"
                " transcript entries, through the migration's writer; stored entries Azure"
                f" does not hold are removed): {', '.join(sids)}",
            )
        )
    if found := by_kind.get("summary_mismatch"):
        ids = tuple(d.keys["call_id"] for d in found)
        actions.append(
            RepairAction(
                "summary_mismatch",
                ids,
                f"recompute the summary metrics of {len(ids)} call(s) from their children: {', '.join(ids)}",
            )
        )
    if found := by_kind.get("missing_transcript"):
        ids = tuple(d.keys["call_id"] for d in found)
        actions.append(
            RepairAction(
                "missing_transcript",
                ids,
                f"rebuild the transcript of {len(ids)} call(s) from call_messages: {', '.join(ids)}",
            )
        )
    if found := by_kind.get("missing_partition"):
        targets = tuple(f"{d.keys['table']}:{d.keys['month']}" for d in found)
        actions.append(
            RepairAction("missing_partition", targets, f"create partition(s) {', '.join(targets)}")
        )
    if found := by_kind.get("stale_spool_file"):
        files = tuple(d.keys["file"] for d in found)
        actions.append(
            RepairAction(
                "stale_spool_file", files, f"publish {len(files)} spooled message(s) to the broker"
            )
        )
    return actions  # fmt: skip


def apply(
    settings: Settings,
    actions: Sequence[RepairAction],
    *,
    send: Callable[[str, str, list[Any]], str] | None = None,
) -> list[str]:
    """Carry the actions out; return one line per action saying what was done."""
    done = []
    with translate_database_errors(), psycopg.connect(settings.libpq_url) as conn:
        for action in actions:
            if action.kind == "azure_remigrate":
                done.append(_remigrate(settings, conn, action.targets))
            elif action.kind == "summary_mismatch":
                ids = [UUID(t) for t in action.targets]
                with conn.transaction():
                    updated = conn.execute(UPDATE_SQL, {"call_ids": ids}).rowcount
                done.append(f"recomputed the summaries of {updated} call(s)")
            elif action.kind == "missing_transcript":
                ids = [UUID(t) for t in action.targets]
                with conn.transaction():
                    rebuilt = transcripts.rebuild(conn, ids)
                done.append(f"rebuilt {rebuilt} transcript(s)")
            elif action.kind == "missing_partition":
                created = []
                for target in action.targets:
                    table, month = target.split(":")
                    with conn.transaction():
                        created += ensure_partitions(
                            conn, months=[date.fromisoformat(month + "-01")], tables=[table]
                        )
                done.append(f"created {', '.join(created) or 'nothing (already there)'}")
            elif action.kind == "stale_spool_file" and send is not None:
                result = Spool(settings.spool_dir).flush(send)
                line = f"published {result.sent} spooled message(s)"
                if result.broker_error:
                    line += f"; broker still unavailable: {result.broker_error}"
                done.append(line)
    return done


def _remigrate(settings: Settings, conn: psycopg.Connection[Any], sids: Sequence[str]) -> str:
    """Migrate the calls of ``sids`` again, holding the migration's lock so no batch writes
    them at the same time."""
    key = lock_key(JobName.MIGRATION)
    locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    conn.commit()
    if not locked or not locked[0]:
        return "did not migrate calls again: a migration run holds its lock; repair again later"
    try:
        customers = dict(
            conn.execute(
                "SELECT twilio_call_sid, legacy_customer_id FROM calls"
                " WHERE source = 'azure' AND twilio_call_sid = ANY(%s)"
                " AND legacy_customer_id IS NOT NULL",
                (list(sids),),
            ).fetchall()
        )
        conn.commit()
        with storage_from_settings(settings) as storage:
            # A known customer is a point read; others (a call never migrated, or made from its
            # entries alone) are looked up by RowKey.
            found = read_calls(storage, sids, customers={s: [c] for s, c in customers.items()})
            return remigrate(conn, found).describe()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        conn.commit()
