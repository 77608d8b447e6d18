"""Landing transformed rows in PostgreSQL, idempotently, inside the caller's transaction.

Every write is safe to repeat: the overlap window of each pass reads recent records again, and a
batch killed before its commit is read again whole. Rows are streamed with COPY into a
session-local staging table and merged from there in one
statement per table, so a batch costs a handful of round trips whatever its size:

* parents (tactics, customers, organizations, calls) are upserted on their Azure key, and an
  update happens only when a value differs (``IS DISTINCT FROM``), so reading a record again
  changes nothing, not even ``updated_at``;
* transcript entries are merged on ``(call_id, sequence)``: an entry already stored as it is
  stays as it is, a changed one is replaced, a new one is added. A call's summary metrics and
  searchable transcript are then recomputed in SQL from its stored children (the transcript by
  the statement every path uses, ``worker.calls.transcripts``), so entries that arrive later
  (the dual-write period) bring them up to date.

Nothing here commits. Methods return the record keys whose write changed the store, and the
problems (a record key and a reason) that the batch turns into rejects.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from worker.azure.transforms import (
    CallRow,
    CustomerRow,
    EntryRow,
    OrganizationRow,
    PromptRow,
    Reject,
    TacticRow,
)
from worker.calls import transcripts
from worker.calls.summary import UPDATE_SQL

#: ``calls.metadata`` of a call known only from its transcript entries (no CallHistory entity).
TRANSCRIPTS_ONLY = {"legacy_origin": "transcripts_only"}


@dataclass(frozen=True, slots=True)
class Problem:
    """A record (``record_key``) that could not be written; ``suffix`` names a part of it."""

    record_key: str
    reason: str
    suffix: str = ""


@dataclass(slots=True)
class WriteOutcome:
    changed: set[str] = field(default_factory=set)

    @property
    def migrated(self) -> int:
        """Records whose write changed the store."""
        return len(self.changed) + self.added

    problems: list[Problem] = field(default_factory=list)
    calls: set[uuid.UUID] = field(default_factory=set)
    #: Rows added by a merge that reports counts rather than keys (transcript entries).
    added: int = 0
    synthesized_calls: int = 0


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class Stage:
    """A temporary table that lives as long as the connection and is emptied at each commit.

    Rows reach it by binary COPY, as ``worker.calls.persist`` writes a live call's children; they are
    merged from there rather than copied straight into the targets, because a migrated record
    may already be stored (the overlap window, a batch read again) and must then change
    nothing.
    """

    def __init__(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        self.name = name
        self.columns = tuple(c for c, _ in columns)
        self.types = [t for _, t in columns]
        self._create = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS"
        ).format(
            sql.Identifier(name),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns
            ),
        )
        self._truncate = sql.SQL("TRUNCATE {}").format(sql.Identifier(name))
        # One round trip: made if missing, emptied (it is empty after a commit, but not when a
        # careful retry writes the same stage twice in one transaction).
        self._prepare = sql.SQL("; ").join([self._create, self._truncate])
        self._copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )

    def load(self, conn: psycopg.Connection[Any], rows: Iterable[Sequence[Any]]) -> int:
        written = 0
        with conn.cursor() as cursor:
            cursor.execute(self._prepare)
            with cursor.copy(self._copy) as copy:
                copy.set_types(self.types)
                for row in rows:
                    copy.write_row(row)
                    written += 1
        return written


_CUSTOMERS = Stage(
    "azure_stage_customers",
    [
        ("external_id", "text"), ("phone_number", "text"), ("name", "text"),
        ("account_last_4", "text"), ("postal_code", "text"), ("balance", "numeric"),
        ("days_overdue", "integer"), ("segment", "text"), ("language", "text"),
        ("metadata", "jsonb"),
    ],
)  # fmt: skip
_CUSTOMER_COLUMNS = _CUSTOMERS.columns[1:]

_ORGANIZATIONS = Stage(
    "azure_stage_organizations",
    [("external_id", "text"), ("name", "text"), ("domain", "text"), ("settings", "jsonb")],
)
_MEMBERS = Stage(
    "azure_stage_members", [("org_key", "text"), ("customer_key", "text"), ("role", "text")]
)

_CALLS = Stage(
    "azure_stage_calls",
    [
        ("record_key", "text"), ("call_id", "uuid"), ("twilio_call_sid", "text"),
        ("legacy_customer_id", "text"), ("call_type", "text"), ("direction", "text"),
        ("status", "text"), ("started_at", "timestamptz"), ("ended_at", "timestamptz"),
        ("duration_seconds", "integer"), ("conversation_id", "text"), ("outcome", "text"),
        ("agent_name", "text"), ("organization_key", "text"), ("tactic_name", "text"),
        ("metadata", "jsonb"),
    ],
)  # fmt: skip
#: Columns of ``calls`` a CallHistory entity sets (compared to decide whether to update).
_CALL_COLUMNS = (
    "twilio_call_sid", "legacy_customer_id", "customer_id", "organization_id",
    "behavioral_tactic_id", "call_type", "direction", "status", "started_at", "ended_at",
    "duration_seconds", "conversation_id", "outcome", "agent_name", "metadata",
)  # fmt: skip

_ENTRIES = Stage(
    "azure_stage_entries",
    [
        ("call_id", "uuid"), ("twilio_call_sid", "text"), ("sequence", "integer"),
        ("timestamp", "timestamptz"), ("kind", "text"), ("role", "text"), ("content", "text"),
        ("tool_name", "text"), ("request", "jsonb"), ("response", "jsonb"),
        ("request_text", "text"), ("response_text", "text"), ("success", "boolean"),
        ("duration_ms", "integer"), ("event_type", "text"), ("event_data", "jsonb"),
        ("event_data_text", "text"),
    ],
)  # fmt: skip

#: Where each kind of entry lands, and the columns that make an entry the same entry.
ENTRY_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "message": ("call_messages", ("timestamp", "role", "content")),
    "tool": (
        "call_tool_executions",
        ("timestamp", "tool_name", "request", "response", "request_text", "response_text",
         "success", "duration_ms"),
    ),
    "event": ("call_events", ("timestamp", "event_type", "event_data", "event_data_text")),
}  # fmt: skip


def _columns(names: Iterable[str], prefix: str = "") -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL(prefix + "{}").format(sql.Identifier(n)) if prefix else sql.Identifier(n)
        for n in names
    )


def _distinct(names: Sequence[str], left: str, right: str) -> sql.Composable:
    """``(left.a, left.b) IS DISTINCT FROM (right.a, right.b)``."""
    return sql.SQL("({}) IS DISTINCT FROM ({})").format(
        sql.SQL(", ").join(sql.Identifier(left, n) for n in names),
        sql.SQL(", ").join(sql.Identifier(right, n) for n in names),
    )


def _sets(names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(n)) for n in names
    )


_UPSERT_CUSTOMERS = sql.SQL(
    "INSERT INTO customers AS t (external_id, {cols})"
    " SELECT external_id, {cols} FROM azure_stage_customers"
    " ON CONFLICT (external_id) DO UPDATE SET {sets}"
    " WHERE {differs} RETURNING t.external_id"
).format(
    cols=_columns(_CUSTOMER_COLUMNS),
    sets=_sets(_CUSTOMER_COLUMNS),
    differs=_distinct(_CUSTOMER_COLUMNS, "t", "excluded"),
)
_LINK_CUSTOMERS = """
UPDATE calls SET customer_id = cu.id
  FROM customers cu
 WHERE cu.external_id = ANY(%(keys)s) AND calls.legacy_customer_id = cu.external_id
   AND calls.customer_id IS NULL AND calls.source = 'azure'
"""

_ORG_COLUMNS = ("name", "domain", "settings")
_UPSERT_ORGANIZATIONS = sql.SQL(
    "INSERT INTO organizations AS t (external_id, {cols})"
    " SELECT external_id, {cols} FROM azure_stage_organizations"
    " ON CONFLICT (external_id) DO UPDATE SET {sets}"
    " WHERE {differs} RETURNING t.external_id"
).format(
    cols=_columns(_ORG_COLUMNS),
    sets=_sets(_ORG_COLUMNS),
    differs=_distinct(_ORG_COLUMNS, "t", "excluded"),
)
_UNKNOWN_MEMBERS = """
SELECT s.org_key, s.customer_key FROM azure_stage_members s
 WHERE NOT EXISTS (SELECT 1 FROM customers cu WHERE cu.external_id = s.customer_key)
"""
_DROP_MEMBERS = """
DELETE FROM organization_members m USING organizations o
 WHERE m.organization_id = o.id AND o.external_id = ANY(%(orgs)s)
   AND NOT EXISTS (
       SELECT 1 FROM azure_stage_members s JOIN customers cu ON cu.external_id = s.customer_key
        WHERE s.org_key = o.external_id AND cu.id = m.customer_id)
RETURNING o.external_id
"""
_UPSERT_MEMBERS = """
INSERT INTO organization_members AS m (organization_id, customer_id, role)
SELECT o.id, cu.id, s.role
  FROM azure_stage_members s
  JOIN organizations o ON o.external_id = s.org_key
  JOIN customers cu ON cu.external_id = s.customer_key
ON CONFLICT (organization_id, customer_id) DO UPDATE SET role = EXCLUDED.role
 WHERE m.role IS DISTINCT FROM EXCLUDED.role
RETURNING (SELECT external_id FROM organizations WHERE id = m.organization_id)
"""

_DUPLICATE_CALLS = """
SELECT s.record_key, c.legacy_customer_id
  FROM azure_stage_calls s JOIN calls c ON c.call_id = s.call_id
 WHERE c.source = 'azure' AND NOT (c.metadata ? 'legacy_origin')
   AND c.legacy_customer_id IS DISTINCT FROM s.legacy_customer_id
"""
_DUPLICATE_SID = "the call SID is already migrated, from entity {}"
_UPSERT_CALLS = sql.SQL(
    """
INSERT INTO calls AS t (call_id, source, revision, persisted_at, {cols})
SELECT s.call_id, 'azure', 1, now(), s.twilio_call_sid, s.legacy_customer_id, cu.id, o.id, bt.id,
       s.call_type, s.direction, s.status, s.started_at, s.ended_at, s.duration_seconds,
       s.conversation_id, s.outcome, s.agent_name, s.metadata
  FROM azure_stage_calls s
  LEFT JOIN customers cu ON cu.external_id = s.legacy_customer_id
  LEFT JOIN organizations o ON o.external_id = s.organization_key
  LEFT JOIN behavioral_tactics bt ON bt.name = s.tactic_name
ON CONFLICT (call_id) DO UPDATE SET {sets}, persisted_at = EXCLUDED.persisted_at
 WHERE t.source = 'azure' AND {differs}
RETURNING t.call_id
"""
).format(
    cols=_columns(_CALL_COLUMNS),
    sets=_sets(_CALL_COLUMNS),
    differs=_distinct(_CALL_COLUMNS, "t", "excluded"),
)

_SYNTHESIZE_CALLS = """
INSERT INTO calls (call_id, source, revision, persisted_at, twilio_call_sid, status,
                   started_at, ended_at, duration_seconds, metadata)
SELECT call_id, 'azure', 1, now(), min(twilio_call_sid), 'ended', min(timestamp),
       max(timestamp), floor(extract(epoch FROM max(timestamp) - min(timestamp)))::int,
       %(metadata)s
  FROM azure_stage_entries GROUP BY call_id
ON CONFLICT (call_id) DO NOTHING
RETURNING call_id
"""
_CALLS_WITH_CHILDREN = """
SELECT s.call_id FROM (SELECT DISTINCT call_id FROM azure_stage_entries) s
 WHERE EXISTS (SELECT 1 FROM call_messages t WHERE t.call_id = s.call_id)
    OR EXISTS (SELECT 1 FROM call_tool_executions t WHERE t.call_id = s.call_id)
    OR EXISTS (SELECT 1 FROM call_events t WHERE t.call_id = s.call_id)
"""

#: Whether an entry staged for a call that has children is already stored (same sequence):
#: only then is there anything to compare or replace.
_COLLISIONS = """
SELECT EXISTS (
    SELECT 1 FROM azure_stage_entries s WHERE s.call_id = ANY(%(known)s) AND (
        EXISTS (SELECT 1 FROM call_messages t
                 WHERE t.call_id = s.call_id AND t.sequence = s.sequence)
     OR EXISTS (SELECT 1 FROM call_tool_executions t
                 WHERE t.call_id = s.call_id AND t.sequence = s.sequence)
     OR EXISTS (SELECT 1 FROM call_events t
                 WHERE t.call_id = s.call_id AND t.sequence = s.sequence)))
"""


def _entry_sql(kind: str) -> tuple[sql.Composed, sql.Composed, sql.Composed]:
    """(delete changed, insert missing, insert all) for the table of ``kind``."""
    table, same = ENTRY_TABLES[kind]
    columns = ("call_id", "sequence", *same)
    target = sql.Identifier(table)
    delete = sql.SQL(
        "DELETE FROM {target} t USING azure_stage_entries s"
        " WHERE s.call_id = ANY(%(known)s) AND t.call_id = s.call_id AND t.sequence = s.sequence"
        " AND (s.kind <> %(kind)s OR {differs})"
        " RETURNING t.call_id, t.sequence"
    ).format(target=target, differs=_distinct(same, "t", "s"))
    # Inserts report (call_id, rows inserted): one row per call, not per entry.
    insert_missing = sql.SQL(
        "WITH added AS (INSERT INTO {target} ({cols}) SELECT {scols} FROM azure_stage_entries s"
        " WHERE s.kind = %(kind)s AND (NOT s.call_id = ANY(%(known)s) OR NOT EXISTS ("
        "SELECT 1 FROM {target} t WHERE t.call_id = s.call_id AND t.sequence = s.sequence"
        " AND t.timestamp = s.timestamp))"
        " RETURNING call_id) SELECT call_id, count(*) FROM added GROUP BY call_id"
    ).format(target=target, cols=_columns(columns), scols=_columns(columns, "s."))
    insert_all = sql.SQL(
        "WITH added AS (INSERT INTO {target} ({cols}) SELECT {scols} FROM azure_stage_entries s"
        " WHERE s.kind = %(kind)s RETURNING call_id)"
        " SELECT call_id, count(*) FROM added GROUP BY call_id"
    ).format(target=target, cols=_columns(columns), scols=_columns(columns, "s."))
    return delete, insert_missing, insert_all


_ENTRY_SQL = {kind: _entry_sql(kind) for kind in ENTRY_TABLES}

_SYNTHESIZED_AMONG = """
SELECT call_id FROM calls WHERE call_id = ANY(%(ids)s) AND metadata ? 'legacy_origin'
"""
_SYNTHESIZED_TIMES = """
UPDATE calls c SET started_at = x.first, ended_at = x.last,
       duration_seconds = floor(extract(epoch FROM x.last - x.first))::int
  FROM (SELECT call_id, min(ts) AS first, max(ts) AS last FROM (
            SELECT call_id, timestamp AS ts FROM call_messages WHERE call_id = ANY(%(ids)s)
            UNION ALL
            SELECT call_id, timestamp FROM call_tool_executions WHERE call_id = ANY(%(ids)s)
            UNION ALL
            SELECT call_id, timestamp FROM call_events WHERE call_id = ANY(%(ids)s)) u
        GROUP BY call_id) x
 WHERE c.call_id = x.call_id AND c.metadata ? 'legacy_origin'
   AND (c.started_at, c.ended_at) IS DISTINCT FROM (x.first, x.last)
"""
_UPSERT_TACTIC = """
INSERT INTO behavioral_tactics AS t (name, archetype, description, config)
VALUES (%(name)s, %(archetype)s, %(description)s, %(config)s)
ON CONFLICT (name) DO UPDATE SET archetype = EXCLUDED.archetype,
       description = EXCLUDED.description, config = EXCLUDED.config
 WHERE (t.archetype, t.description, t.config)
       IS DISTINCT FROM (EXCLUDED.archetype, EXCLUDED.description, EXCLUDED.config)
RETURNING t.name
"""

_EXISTING_REJECTS = """
SELECT key, md5(raw), reason, resolved_at IS NULL FROM migration_rejects
 WHERE source = %(source)s AND key = ANY(%(keys)s)
"""
_UPSERT_REJECT = """
INSERT INTO migration_rejects AS r (source, key, raw, reason, source_timestamp)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (source, key) DO UPDATE SET raw = EXCLUDED.raw, reason = EXCLUDED.reason,
       source_timestamp = EXCLUDED.source_timestamp, last_seen_at = now(), resolved_at = NULL
"""
_OPEN_REJECTS = """
SELECT key FROM migration_rejects WHERE source = %(source)s AND resolved_at IS NULL
"""
_RESOLVE_REJECTS = """
UPDATE migration_rejects SET resolved_at = now()
 WHERE source = %(source)s AND resolved_at IS NULL AND key = ANY(%(keys)s)
"""


class Writer:
    """The writes of one batch, on ``conn`` (a psycopg connection in an open transaction)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    # -- configuration (blobs) ---------------------------------------------------------------

    def tactics(self, rows: Sequence[TacticRow]) -> WriteOutcome:
        written = WriteOutcome()
        with self.conn.cursor() as cursor:
            for row in rows:
                cursor.execute(
                    _UPSERT_TACTIC,
                    {
                        "name": row.name,
                        "archetype": row.archetype,
                        "description": row.description,
                        "config": Jsonb(row.config),
                    },
                )
                if cursor.fetchone() is not None:
                    written.changed.add(row.key)
        return written

    def prompts(self, rows: Sequence[PromptRow]) -> WriteOutcome:
        """A changed text is a new version (the previous one stays, inactive); the same text
        again records nothing new."""
        written = WriteOutcome()
        with self.conn.cursor() as cursor:
            for row in rows:
                cursor.execute(
                    "SELECT id, content_sha256, environment FROM system_prompts"
                    " WHERE name = %s AND is_active FOR UPDATE",
                    (row.name,),
                )
                active = cursor.fetchone()
                if active is not None and active[1] == row.sha256:
                    if active[2] != row.environment:
                        cursor.execute(
                            "UPDATE system_prompts SET environment = %s WHERE id = %s",
                            (row.environment, active[0]),
                        )
                        written.changed.add(row.key)
                    continue
                if active is not None:
                    cursor.execute(
                        "UPDATE system_prompts SET is_active = false WHERE id = %s", (active[0],)
                    )
                cursor.execute(
                    "SELECT coalesce(max(version), 0) + 1 FROM system_prompts WHERE name = %s",
                    (row.name,),
                )
                version = cursor.fetchone()
                cursor.execute(  # content_sha256 is computed by PostgreSQL
                    "INSERT INTO system_prompts (name, environment, prompt_template, variables,"
                    " version, is_active) VALUES (%s, %s, %s, %s, %s, true)",
                    (
                        row.name,
                        row.environment,
                        row.template,
                        Jsonb(row.variables),
                        version[0] if version else 1,
                    ),
                )
                written.changed.add(row.key)
        return written

    # -- accounts ------------------------------------------------------------------------------

    def customers(self, rows: Sequence[CustomerRow]) -> WriteOutcome:
        written = WriteOutcome()
        unique = {row.external_id: row for row in rows}
        _CUSTOMERS.load(
            self.conn,
            (
                (r.external_id, r.phone_number, r.name, r.account_last_4, r.postal_code,
                 r.balance, r.days_overdue, r.segment, r.language, Jsonb(r.extra))
                for r in unique.values()
            ),
        )  # fmt: skip
        changed = [row[0] for row in self.conn.execute(_UPSERT_CUSTOMERS).fetchall()]
        if changed:
            # Calls migrated before their customer (dual-write, or a customer fixed later).
            self.conn.execute(_LINK_CUSTOMERS, {"keys": changed})
        written.changed.update(unique[key].key for key in changed)
        return written

    def organizations(self, rows: Sequence[OrganizationRow]) -> WriteOutcome:
        written = WriteOutcome()
        unique = {row.external_id: row for row in rows}
        _ORGANIZATIONS.load(
            self.conn,
            ((r.external_id, r.name, r.domain, Jsonb(r.settings)) for r in unique.values()),
        )
        _MEMBERS.load(
            self.conn,
            ((r.external_id, m.customer_key, m.role) for r in unique.values() for m in r.members),
        )
        changed = {row[0] for row in self.conn.execute(_UPSERT_ORGANIZATIONS).fetchall()}
        for org_key, customer_key in self.conn.execute(_UNKNOWN_MEMBERS).fetchall():
            written.problems.append(
                Problem(
                    unique[org_key].key,
                    f"member customer_id {customer_key!r} names no migrated customer",
                    suffix=f"/members/{customer_key}",
                )
            )
        orgs = list(unique)
        changed.update(r[0] for r in self.conn.execute(_DROP_MEMBERS, {"orgs": orgs}).fetchall())
        changed.update(r[0] for r in self.conn.execute(_UPSERT_MEMBERS).fetchall())
        written.changed.update(unique[key].key for key in changed if key in unique)
        return written

    # -- calls ---------------------------------------------------------------------------------

    def calls(self, rows: Sequence[CallRow]) -> WriteOutcome:
        written = WriteOutcome()
        unique: dict[uuid.UUID, CallRow] = {}
        for row in rows:
            first = unique.setdefault(row.call_id, row)
            if first is not row:
                written.problems.append(Problem(row.key, _DUPLICATE_SID.format(first.key)))
        _CALLS.load(
            self.conn,
            (
                (r.key, r.call_id, r.sid, r.legacy_customer_id, r.call_type, r.direction,
                 r.status, r.started_at, r.ended_at, r.duration_seconds, r.conversation_id,
                 r.outcome, r.agent_name, r.organization_key, r.tactic_name, Jsonb(r.extra))
                for r in unique.values()
            ),
        )  # fmt: skip
        duplicates = self.conn.execute(_DUPLICATE_CALLS).fetchall()
        if duplicates:
            for record_key, legacy_customer_id in duplicates:
                sid = record_key.rpartition("/")[2]
                written.problems.append(
                    Problem(record_key, _DUPLICATE_SID.format(f"{legacy_customer_id}/{sid}"))
                )
            self.conn.execute(
                "DELETE FROM azure_stage_calls WHERE record_key = ANY(%s)",
                ([d[0] for d in duplicates],),
            )
        changed = [row[0] for row in self.conn.execute(_UPSERT_CALLS).fetchall()]
        written.changed.update(unique[call_id].key for call_id in changed)
        return written

    def entries(self, rows: Sequence[EntryRow]) -> WriteOutcome:
        """Merge transcript entries into their calls' children; calls whose children changed
        are in ``WriteOutcome.calls`` for ``finish_calls``."""
        written = WriteOutcome()
        unique = {(r.call_id, r.sequence): r for r in rows}
        _ENTRIES.load(
            self.conn,
            (
                (r.call_id, r.sid, r.sequence, r.timestamp, r.kind, r.role, r.content,
                 r.tool_name, _json(r.request), _json(r.response), r.request_text,
                 r.response_text, r.success, r.duration_ms, r.event_type, _json(r.event_data),
                 r.event_data_text)
                for r in unique.values()
            ),
        )  # fmt: skip
        synthesized = self.conn.execute(
            _SYNTHESIZE_CALLS, {"metadata": Jsonb(TRANSCRIPTS_ONLY)}
        ).fetchall()
        written.synthesized_calls = len(synthesized)
        written.calls.update(row[0] for row in synthesized)
        known = [row[0] for row in self.conn.execute(_CALLS_WITH_CHILDREN).fetchall()]
        if known:
            found = self.conn.execute(_COLLISIONS, {"known": known}, prepare=True).fetchone()
            if not (found and found[0]):
                known = []  # only new entries of those calls: nothing to compare
        with self.conn.cursor() as cursor:
            for kind, (delete, insert_missing, insert_all) in _ENTRY_SQL.items():
                params = {"kind": kind, "known": known}
                if known:
                    cursor.execute(delete, params)
                    for call_id, _sequence in cursor.fetchall():
                        written.calls.add(call_id)
                    cursor.execute(insert_missing, params)
                else:
                    cursor.execute(insert_all, params)
                for call_id, added in cursor.fetchall():
                    written.calls.add(call_id)
                    written.added += added
        return written

    def finish_calls(self, call_ids: Iterable[uuid.UUID]) -> None:
        """Bring derived values of ``call_ids`` up to date with their stored children: the times
        of calls known only from transcripts, the summary metrics, the searchable transcript
        (removed where a call has no message left)."""
        ids = sorted(set(call_ids))
        if not ids:
            return
        params = {"ids": ids}
        synthesized = self.conn.execute(_SYNTHESIZED_AMONG, params, prepare=True).fetchall()
        if synthesized:
            self.conn.execute(_SYNTHESIZED_TIMES, {"ids": [r[0] for r in synthesized]})
        self.conn.execute(UPDATE_SQL, {"call_ids": ids}, prepare=True)
        transcripts.rebuild(self.conn, ids)

    # -- rejects -------------------------------------------------------------------------------

    def rejects(self, rejects: Sequence[Reject]) -> set[str]:
        """Keep ``rejects``; return the keys that are new or differ from what was kept."""
        changed: set[str] = set()
        by_source: dict[str, list[Reject]] = {}
        for reject in rejects:
            by_source.setdefault(reject.source, []).append(reject)
        with self.conn.cursor() as cursor:
            for source, items in by_source.items():
                cursor.execute(
                    _EXISTING_REJECTS, {"source": source, "keys": [r.key for r in items]}
                )
                kept = {key: (digest, reason, open_) for key, digest, reason, open_ in cursor}
                for reject in items:
                    digest = hashlib.md5(reject.raw.encode(), usedforsecurity=False).hexdigest()
                    if kept.get(reject.key) != (digest, reject.reason, True):
                        changed.add(reject.key)
                cursor.executemany(
                    _UPSERT_REJECT,
                    [(r.source, r.key, r.raw, r.reason, r.timestamp) for r in items],
                )
        return changed

    def resolve(
        self, source: str, keys: Sequence[str], *, parts: bool = False, keep: Sequence[str] = ()
    ) -> None:
        """Mark the rejects of ``keys`` resolved: a later version of the record migrated. With
        ``parts``, also the rejects of their parts (``<key>/...``) except ``keep``."""
        if not keys:
            return
        open_keys = {
            row[0] for row in self.conn.execute(_OPEN_REJECTS, {"source": source}, prepare=True)
        }
        if not open_keys:
            return
        resolved = {k for k in keys if k in open_keys}
        if parts:
            prefixes = tuple(k + "/" for k in keys)
            resolved |= {k for k in open_keys if k.startswith(prefixes) and k not in keep}
        if resolved:
            self.conn.execute(
                _RESOLVE_REJECTS, {"source": source, "keys": sorted(resolved)}, prepare=True
            )
