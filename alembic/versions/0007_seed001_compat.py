"""Seed 001's code runs as written: one full-text index, ``call_analysis.id``, the partition runbook.

* **Full-text search.** ``call_transcripts`` had a stored ``search_vector`` column with its own
  GIN index, so seed 001's ``to_tsvector('english', transcript_text) @@ ...`` scanned every
  transcript. The column and its index go; one GIN index on that very expression replaces them,
  used by seed 001's query and by ours, and every write pays for one full-text index, not two.
  Built CONCURRENTLY (outside the revision's transaction) so finalizes go on meanwhile.
* **call_analysis.id**, which seed 001's success-rate query counts: a call has at most one
  analysis, so the id is the call's id, a virtual generated column (computed when read, stored
  nowhere, no table rewrite).
* **The partition runbook as SQL functions**, with seed 001's names and call forms:
  ``create_monthly_partitions()``, ``cleanup_old_partitions()`` and ``drop_old_partitions()``.
  They and the Python services (rotation, the finalize path, retention) apply the same rules
  because both call the ``callstore_*`` functions below: partition names and DDL, the months to
  make, the retention cutoff, which months calls still hold, how a batch of expired calls is
  deleted, how a detached partition is archived and how an archived one is dropped. Python keeps
  what cannot run inside a function: ``DETACH ... CONCURRENTLY`` (never in a transaction block),
  one short transaction per step, the time budget, exports and their verification.
  ``docs/maintenance.md`` says what the SQL functions do differently because of that.

Monthly partitions themselves are made by the rotation after the upgrade, never here.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FTS_INDEX = "ix_call_transcripts_transcript_text_fts"
OLD_FTS_INDEX = "ix_call_transcripts_search_vector"

#: "callpart": serializes partition DDL across processes (taken per transaction).
PARTITION_DDL_LOCK_KEY = 0x63616C6C_70617274
#: The advisory-lock keys of the rotation and retention jobs (``worker.jobs.lock_key`` of
#: ``rotate_partitions`` and ``enforce_retention`` today), so the runbook functions and beat's
#: jobs never run at once.
ROTATION_LOCK_KEY = -2259693506541952494
RETENTION_LOCK_KEY = 7923435725325194598

#: Each function as (its DROP statement, its CREATE statement), in dependency order.
FUNCTIONS: tuple[tuple[str, str], ...] = (
    (
        "DROP FUNCTION IF EXISTS callstore_partitioned_tables()",
        """
CREATE FUNCTION callstore_partitioned_tables() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ARRAY['call_messages', 'call_transitions', 'call_metrics', 'call_rag_retrievals']
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_max_clock_skew()",
        """
-- How long before its call started an entry may be stamped (the payload contract's
-- MAX_CLOCK_SKEW): the margin every month rule below keeps.
CREATE FUNCTION callstore_max_clock_skew() RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN interval '1 hour'
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_partition_name(text, date)",
        """
-- call_messages_2026_03: the name of a table's partition for the month containing p_month.
CREATE FUNCTION callstore_partition_name(p_table text, p_month date) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN p_table || '_'
        || lpad(extract(year FROM p_month)::int::text,
                greatest(4, length(extract(year FROM p_month)::int::text)), '0')
        || '_' || lpad(extract(month FROM p_month)::int::text, 2, '0')
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_partition_month(text, text)",
        r"""
-- The month partition p_name of p_table stands for; NULL for any other name.
CREATE FUNCTION callstore_partition_month(p_table text, p_name text) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE
        WHEN p_table = ANY (callstore_partitioned_tables())
         AND left(p_name, length(p_table) + 1) = p_table || '_'
         AND substr(p_name, length(p_table) + 2) ~ '^[0-9]{4}_(0[1-9]|1[0-2])$'
        THEN make_date(substr(p_name, length(p_table) + 2, 4)::int,
                       substr(p_name, length(p_table) + 7, 2)::int, 1)
    END
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_first_month_of_call(timestamp with time zone)",
        """
-- The first month in which a call that started at p_started_at may have timeline rows: its
-- entries may be stamped up to the clock skew before it started. Months are UTC months.
CREATE FUNCTION callstore_first_month_of_call(p_started_at timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN date_trunc('month', (p_started_at - callstore_max_clock_skew()) AT TIME ZONE 'UTC')::date
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_retention_cutoff(integer, timestamp with time zone)",
        """
-- Retention's cutoff at as_of: calls that started before calls_before are expired, and so is
-- every month before keep_from (the first month a kept call may have rows in). No row when
-- retention is off (retention_days = 0).
CREATE FUNCTION callstore_retention_cutoff(
    retention_days integer,
    as_of timestamptz DEFAULT now(),
    OUT calls_before timestamptz,
    OUT keep_from date
)
    RETURNS SETOF record
    LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT as_of - retention_days * interval '24 hours',
           callstore_first_month_of_call(as_of - retention_days * interval '24 hours')
     WHERE retention_days > 0;
END
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_archive_drop_due_before(integer, timestamp with time zone)",
        """
-- Archived partitions archived at or before this instant are past their grace period.
CREATE FUNCTION callstore_archive_drop_due_before(grace_days integer, as_of timestamptz DEFAULT now())
    RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN as_of - grace_days * interval '24 hours'
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_months_held_from(timestamp with time zone)",
        """
-- The first month the stored calls (those that started at or after since) may have rows in:
-- a partition of that month or a later one must stay attached. NULL when there is no call.
CREATE FUNCTION callstore_months_held_from(since timestamptz DEFAULT NULL) RETURNS date
    LANGUAGE sql STABLE
    RETURN (SELECT callstore_first_month_of_call(min(c.started_at)) FROM calls c
             WHERE c.started_at >= coalesce(since, '-infinity'::timestamptz))
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_attached_partitions()",
        """
-- The partitions attached to the monthly-partitioned tables of the current schema.
CREATE FUNCTION callstore_attached_partitions()
    RETURNS TABLE (parent text, partition text, month date, detach_pending boolean)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT p.relname::text, c.relname::text, callstore_partition_month(p.relname, c.relname),
           i.inhdetachpending
      FROM pg_inherits i
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_class c ON c.oid = i.inhrelid
      JOIN pg_namespace n ON n.oid = p.relnamespace
     WHERE n.nspname = current_schema() AND p.relname = ANY (callstore_partitioned_tables());
END
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_months_to_make(integer, date, date)",
        """
-- The months rotation makes, oldest first: the month of today and months_ahead after it, every
-- month any partitioned table has (so all of them stay aligned) and every month in which a
-- stored call started (a loose index scan on ix_calls_started_at: one probe per month); never
-- one before keep_from, which retention would only take out again; only those some table lacks.
CREATE FUNCTION callstore_months_to_make(
    months_ahead integer,
    keep_from date DEFAULT NULL,
    today date DEFAULT (now() AT TIME ZONE 'UTC')::date
)
    RETURNS SETOF date
    LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH RECURSIVE call_months(month) AS (
        SELECT date_trunc('month', min(c.started_at) AT TIME ZONE 'UTC')
          FROM calls c
         WHERE c.started_at >= coalesce(keep_from::timestamp AT TIME ZONE 'UTC',
                                        '-infinity'::timestamptz)
        UNION ALL
        SELECT (SELECT date_trunc('month', min(c.started_at) AT TIME ZONE 'UTC')
                  FROM calls c
                 WHERE c.started_at >= (m.month + interval '1 month') AT TIME ZONE 'UTC')
          FROM call_months m
         WHERE m.month IS NOT NULL
    ), present AS (
        SELECT a.month, count(DISTINCT a.parent) AS tables
          FROM callstore_attached_partitions() a
         WHERE a.month IS NOT NULL
         GROUP BY a.month
    ), wanted(month) AS (
        SELECT generate_series(date_trunc('month', today::timestamp),
                               date_trunc('month', today::timestamp)
                               + make_interval(months => months_ahead),
                               interval '1 month')::date
        UNION
        SELECT p.month FROM present p
        UNION
        SELECT m.month::date FROM call_months m WHERE m.month IS NOT NULL
    )
    SELECT w.month
      FROM wanted w
     WHERE w.month >= coalesce(keep_from, '-infinity'::date)
       AND coalesce((SELECT p.tables FROM present p WHERE p.month = w.month), 0)
           < cardinality(callstore_partitioned_tables())
     ORDER BY w.month;
END
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_ensure_partition(text, date)",
        f"""
-- Make p_parent's partition for the month of p_month unless it is attached; the name made,
-- or NULL. Created as a plain table, then attached: ATTACH takes SHARE UPDATE EXCLUSIVE on the
-- parent, which inserts do not conflict with (CREATE TABLE ... PARTITION OF would take ACCESS
-- EXCLUSIVE). An advisory lock serializes partition DDL across processes.
CREATE FUNCTION callstore_ensure_partition(p_parent text, p_month date) RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    v_month date := date_trunc('month', p_month::timestamp)::date;
    v_name text := callstore_partition_name(p_parent, v_month);
BEGIN
    IF NOT p_parent = ANY (callstore_partitioned_tables()) THEN
        RAISE EXCEPTION '% is not a monthly-partitioned table', p_parent;
    END IF;
    PERFORM pg_advisory_xact_lock({PARTITION_DDL_LOCK_KEY});
    IF EXISTS (SELECT 1 FROM callstore_attached_partitions() a
                WHERE a.parent = p_parent AND a.month = v_month) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I (LIKE %I INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)',
                   v_name, p_parent);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   p_parent, v_name, v_month::text || ' 00:00:00+00',
                   (v_month + interval '1 month')::date::text || ' 00:00:00+00');
    RETURN v_name;
END
$$
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_delete_expired_calls(timestamp with time zone, date, integer)",
        """
-- One batch of retention's deletes, in the caller's transaction: up to batch_size calls that
-- started before calls_before (oldest first; calls locked by a finalize are skipped, not
-- waited for), their timeline rows in the months from keep_from on (older ones leave with
-- their partition), then the calls, whose unpartitioned children go by ON DELETE CASCADE.
CREATE FUNCTION callstore_delete_expired_calls(
    calls_before timestamptz,
    keep_from date,
    batch_size integer DEFAULT 500,
    OUT deleted_calls integer,
    OUT deleted_rows bigint
)
    LANGUAGE plpgsql
AS $$
DECLARE
    v_ids uuid[];
    v_table text;
    v_count bigint;
BEGIN
    deleted_calls := 0;
    deleted_rows := 0;
    SELECT coalesce(array_agg(s.call_id), '{}') INTO v_ids
      FROM (SELECT c.call_id FROM calls c
             WHERE c.started_at < calls_before
             ORDER BY c.started_at
             LIMIT batch_size
               FOR UPDATE SKIP LOCKED) s;
    IF cardinality(v_ids) = 0 THEN
        RETURN;
    END IF;
    FOREACH v_table IN ARRAY callstore_partitioned_tables() LOOP
        EXECUTE format('DELETE FROM %I WHERE call_id = ANY ($1) AND timestamp >= $2', v_table)
          USING v_ids, keep_from::timestamp AT TIME ZONE 'UTC';
        GET DIAGNOSTICS v_count = ROW_COUNT;
        deleted_rows := deleted_rows + v_count;
    END LOOP;
    DELETE FROM calls c WHERE c.call_id = ANY (v_ids);
    GET DIAGNOSTICS deleted_calls = ROW_COUNT;
END
$$
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_record_detach(text, text, date, timestamp with time zone)",
        """
-- Note in archived_partitions that a partition is about to be detached (idempotent while one
-- is in flight), so a run cut off after the detach knows what to finish.
CREATE FUNCTION callstore_record_detach(
    p_parent text, p_partition text, p_month date, p_at timestamptz
) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO archived_partitions (parent_table, partition_name, month, status, detach_started_at)
    VALUES (p_parent, p_partition, p_month, 'detaching', p_at)
    ON CONFLICT (partition_name) WHERE status = 'detaching' DO NOTHING;
END
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_archive_partition(text, timestamp with time zone)",
        """
-- Move the detached table p_partition into the archive schema and mark its record archived;
-- its name there. A month archived twice (a late call made it again) gets the next free name
-- (call_messages_2026_01_2, _3, ...), its indexes renamed with it (index names are unique per
-- schema).
CREATE FUNCTION callstore_archive_partition(p_partition text, p_at timestamptz) RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    v_name text := p_partition;
    v_suffix integer := 1;
    v_number integer := 0;
    v_index text;
    v_rows bigint;
BEGIN
    WHILE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'archive' AND c.relname = v_name) LOOP
        v_suffix := v_suffix + 1;
        v_name := p_partition || '_' || v_suffix;
    END LOOP;
    IF v_name <> p_partition THEN
        FOR v_index IN
            SELECT ci.relname FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid
             WHERE x.indrelid = to_regclass(format('%I', p_partition))
             ORDER BY ci.relname
        LOOP
            v_number := v_number + 1;
            EXECUTE format('ALTER INDEX %I RENAME TO %I', v_index, v_name || '_i' || v_number);
        END LOOP;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', p_partition, v_name);
    END IF;
    EXECUTE format('ALTER TABLE %I SET SCHEMA archive', v_name);
    SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
                ELSE coalesce(pg_stat_get_live_tuples(c.oid), 0) END
      INTO v_rows
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'archive' AND c.relname = v_name;
    UPDATE archived_partitions
       SET status = 'archived', archive_name = v_name, archived_at = p_at,
           row_estimate = v_rows, last_error = NULL
     WHERE partition_name = p_partition AND status = 'detaching';
    RETURN v_name;
END
$$
""",
    ),
    (
        "DROP FUNCTION IF EXISTS callstore_drop_archived(uuid, timestamp with time zone)",
        """
-- Drop the archived table of record p_id and mark the record dropped; false (and the record
-- marked missing) when the table was no longer in the archive (restored or removed by hand).
CREATE FUNCTION callstore_drop_archived(p_id uuid, p_at timestamptz) RETURNS boolean
    LANGUAGE plpgsql
AS $$
DECLARE
    v_name text;
    v_found boolean;
BEGIN
    SELECT ap.archive_name INTO v_name FROM archived_partitions ap WHERE ap.id = p_id;
    v_found := v_name IS NOT NULL AND to_regclass(format('%I.%I', 'archive', v_name)) IS NOT NULL;
    IF v_found THEN
        EXECUTE format('DROP TABLE %I.%I', 'archive', v_name);
    END IF;
    UPDATE archived_partitions
       SET status = CASE WHEN v_found THEN 'dropped' ELSE 'missing' END, dropped_at = p_at
     WHERE id = p_id;
    RETURN v_found;
END
$$
""",
    ),
    (
        "DROP FUNCTION IF EXISTS create_monthly_partitions(integer, integer, timestamp with time zone)",
        f"""
-- Seed 001's runbook: make the partitions rotation would make now (the defaults are those of
-- CALLSTORE_PARTITION_PREMAKE_MONTHS and CALLSTORE_RETENTION_DAYS). One line per partition made.
CREATE FUNCTION create_monthly_partitions(
    months_ahead integer DEFAULT 3,
    retention_days integer DEFAULT 365,
    as_of timestamptz DEFAULT now()
) RETURNS SETOF text
    LANGUAGE plpgsql
AS $$
DECLARE
    v_keep date;
    v_month date;
    v_table text;
    v_made text;
BEGIN
    -- Waits for a rotation (beat's or callstore partitions ensure) to finish, then makes what
    -- is left.
    PERFORM pg_advisory_xact_lock({ROTATION_LOCK_KEY});
    SELECT cut.keep_from INTO v_keep FROM callstore_retention_cutoff(retention_days, as_of) cut;
    FOR v_month IN
        SELECT m.month
          FROM callstore_months_to_make(months_ahead, v_keep, (as_of AT TIME ZONE 'UTC')::date)
               AS m(month)
    LOOP
        FOREACH v_table IN ARRAY callstore_partitioned_tables() LOOP
            v_made := callstore_ensure_partition(v_table, v_month);
            IF v_made IS NOT NULL THEN
                RETURN NEXT 'Created partition: ' || v_made;
            END IF;
        END LOOP;
    END LOOP;
END
$$
""",
    ),
    (
        "DROP FUNCTION IF EXISTS drop_old_partitions(integer, timestamp with time zone)",
        f"""
-- Seed 001's runbook: drop the archived partitions whose grace period (default: that of
-- CALLSTORE_RETENTION_GRACE_DAYS) is over. One that was exported is left to `callstore retention
-- run`, which reads the export back and compares it with the table before dropping it.
CREATE FUNCTION drop_old_partitions(
    grace_days integer DEFAULT 7,
    as_of timestamptz DEFAULT now()
) RETURNS SETOF text
    LANGUAGE plpgsql
AS $$
DECLARE
    v_record record;
BEGIN
    IF NOT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY}) THEN
        RETURN NEXT 'Nothing done: a retention run holds its lock';
        RETURN;
    END IF;
    FOR v_record IN
        SELECT ap.id, ap.archive_name, ap.export_path
          FROM archived_partitions ap
         WHERE ap.status = 'archived'
           AND ap.archived_at <= callstore_archive_drop_due_before(grace_days, as_of)
         ORDER BY ap.month, ap.parent_table, ap.detach_started_at
    LOOP
        IF v_record.export_path IS NOT NULL THEN
            RETURN NEXT format('Kept: archive.%s (exported: callstore retention run verifies the'
                               ' export, then drops it)', v_record.archive_name);
        ELSIF callstore_drop_archived(v_record.id, as_of) THEN
            RETURN NEXT format('Dropped partition: archive.%s', v_record.archive_name);
        ELSE
            RETURN NEXT format('Missing: archive.%s was no longer in the archive',
                               v_record.archive_name);
        END IF;
    END LOOP;
END
$$
""",
    ),
    (
        "DROP FUNCTION IF EXISTS cleanup_old_partitions(integer, integer, timestamp with time zone)",
        f"""
-- Seed 001's runbook: a retention run in one transaction. Deletes the expired calls, archives
-- each expired month no remaining call may have rows in, then drops what is past its grace
-- period (drop_old_partitions). Inside a function DETACH cannot be CONCURRENTLY: a plain
-- DETACH takes ACCESS EXCLUSIVE on the parent until the function's transaction ends, and
-- waits at most 2 s for it (a busy table is kept for the next run).
CREATE FUNCTION cleanup_old_partitions(
    retention_days integer DEFAULT 365,
    grace_days integer DEFAULT 7,
    as_of timestamptz DEFAULT now()
) RETURNS SETOF text
    LANGUAGE plpgsql
AS $$
DECLARE
    v_cut record;
    v_batch record;
    v_calls bigint := 0;
    v_rows bigint := 0;
    v_held date;
    v_part record;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    IF NOT pg_try_advisory_xact_lock({RETENTION_LOCK_KEY}) THEN
        RETURN NEXT 'Nothing done: a retention run holds its lock';
        RETURN;
    END IF;
    SELECT * INTO v_cut FROM callstore_retention_cutoff(retention_days, as_of);
    IF v_cut.calls_before IS NULL THEN
        RETURN NEXT 'Retention is off (retention_days = 0): nothing expires';
        RETURN;
    END IF;
    LOOP
        SELECT * INTO v_batch FROM callstore_delete_expired_calls(v_cut.calls_before, v_cut.keep_from);
        EXIT WHEN v_batch.deleted_calls = 0;
        v_calls := v_calls + v_batch.deleted_calls;
        v_rows := v_rows + v_batch.deleted_rows;
    END LOOP;
    IF v_calls > 0 THEN
        RETURN NEXT format('Deleted %s expired call(s) and %s timeline row(s)', v_calls, v_rows);
    END IF;
    v_held := callstore_months_held_from();
    PERFORM set_config('lock_timeout', '2s', true);
    FOR v_part IN
        SELECT a.parent, a.partition, a.month, a.detach_pending
          FROM callstore_attached_partitions() a
         WHERE a.month < v_cut.keep_from
         ORDER BY a.month, a.parent
    LOOP
        IF v_part.detach_pending THEN
            RETURN NEXT format('Kept: %s (a detach is pending: callstore retention run finishes it)',
                               v_part.partition);
        ELSIF v_held IS NOT NULL AND v_part.month >= v_held THEN
            RETURN NEXT format('Kept: %s (calls that may own rows in it remain)', v_part.partition);
        ELSE
            BEGIN
                PERFORM callstore_record_detach(v_part.parent, v_part.partition, v_part.month, as_of);
                EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', v_part.parent, v_part.partition);
                RETURN NEXT format('Archived partition: %s as archive.%s', v_part.partition,
                                   callstore_archive_partition(v_part.partition, as_of));
            EXCEPTION WHEN lock_not_available THEN
                RETURN NEXT format('Kept: %s (its table stayed busy for 2 s: the next run)',
                                   v_part.partition);
            END;
        END IF;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    RETURN QUERY SELECT * FROM drop_old_partitions(grace_days, as_of);
END
$$
""",
    ),
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            FTS_INDEX,
            "call_transcripts",
            [sa.text("to_tsvector('english'::regconfig, transcript_text)")],
            postgresql_using="gin",
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            OLD_FTS_INDEX,
            table_name="call_transcripts",
            postgresql_concurrently=True,
            if_exists=True,
        )
    op.drop_column("call_transcripts", "search_vector")
    op.add_column(
        "call_analysis",
        sa.Column("id", sa.UUID(), sa.Computed("call_id", persisted=False), nullable=True),
    )
    for _, create in FUNCTIONS:
        op.execute(create)


def downgrade() -> None:
    for drop, _ in reversed(FUNCTIONS):
        op.execute(drop)
    op.drop_column("call_analysis", "id")
    op.add_column(
        "call_transcripts",
        sa.Column(
            "search_vector",
            sa.dialects.postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, transcript_text)", persisted=True),
            nullable=True,
        ),
    )
    with op.get_context().autocommit_block():
        op.create_index(
            OLD_FTS_INDEX,
            "call_transcripts",
            ["search_vector"],
            postgresql_using="gin",
            postgresql_concurrently=True,
            if_not_exists=True,
        )
        op.drop_index(
            FTS_INDEX,
            table_name="call_transcripts",
            postgresql_concurrently=True,
            if_exists=True,
        )
