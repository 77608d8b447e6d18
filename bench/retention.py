"""Benchmark of partition maintenance: ``python -m bench.retention [--quick] [--json FILE]``.

Measures, on an embedded PostgreSQL started in a temporary directory:

* the partition part of retention (detach concurrently, move to the archive, drop) of one
  expired month holding ``small`` and then ``large`` (10x) calls, next to what deleting the same
  rows would cost: a month goes by a drop, not a delete. The calls are deleted and vacuumed and
  the data checkpointed and synced first, as they long are for a month that expired a year
  after it ended. The catalog work (detach, archive) is split from the drops, whose time is the
  filesystem freeing the files and grows with their size;
* the rate of the batched delete of expired calls with all their rows (calls/s);
* the longest ingest stall while rotation and retention run: the longest lock wait any
  concurrent finalize was seen in (``pg_locks.waitstart``, sampled every 2 ms) and finalize
  latencies against a baseline without maintenance.

History is made by persisting a few hundred simulated calls and cloning them in SQL (new ids,
times shifted into the month), which makes 100k realistic calls in a minute rather than an hour.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from bench.common import section_main
from models.base import PARTITIONED_TABLES
from models.payload import CallPayload
from worker.calls.child_tables import CALL_TABLES
from worker.calls.finalize import finalize_call, partition_months
from worker.calls.persist import build_rows, write_call
from worker.db import build_engine, raw_connection, session_scope
from worker.dev import stack
from worker.dev.simulate import CallShape, simulate_call
from worker.log import configure_logging
from worker.maintenance.expiry import retention_cutoff
from worker.maintenance.partitions import ensure_partitions, month_bounds
from worker.maintenance.retention import delete_call_batch, enforce_retention
from worker.maintenance.retention_rules import RetentionPolicy
from worker.maintenance.rotation import rotate_partitions
from worker.settings import Settings

EXPIRED_MONTH = date(2025, 1, 1)
#: Retention runs as if it were this long after the expired month: only that month expires.
RUN_AT = datetime(2026, 2, 20, 12, tzinfo=UTC)
POLICY = RetentionPolicy(retention_days=365, grace_days=0)
SHAPE = CallShape(min_messages=6, max_messages=20)
#: ``application_name`` of the engine's connections (``worker.db.build_engine``): the writers.
WRITER_APP = "callstore"


@dataclass(frozen=True)
class Sizes:
    small: int
    large: int
    templates: int
    stall_calls: int
    baseline_seconds: float
    rotation_months: int


QUICK = Sizes(
    small=1_000, large=10_000, templates=100, stall_calls=2_000, baseline_seconds=2,
    rotation_months=12,
)  # fmt: skip
FULL = Sizes(
    small=10_000, large=100_000, templates=300, stall_calls=20_000, baseline_seconds=5,
    rotation_months=36,
)  # fmt: skip


def _settings(url: str) -> Settings:
    return Settings(
        _env_file=None,
        database_url=url,
        broker_url="redis://localhost:6379/0",
        log_level="WARNING",
        database_pool_size=4,
    )


def _payload(seed: int, start: datetime) -> dict[str, Any]:
    recorder = simulate_call(
        random.Random(seed), start=start, shape=SHAPE, announce=False, journal=False
    )
    recorder.update_status("ended")
    body: dict[str, Any] = recorder.build_payload()
    return body


# -- history ---------------------------------------------------------------------------------


def _persist_templates(engine: Engine, count: int) -> None:
    lower, _ = month_bounds(EXPIRED_MONTH)
    with session_scope(engine) as session:
        conn = raw_connection(session)
        for seed in range(count):
            payload = CallPayload.model_validate(_payload(seed, lower + timedelta(hours=seed)))
            ensure_partitions(conn, months=partition_months(payload))
            write_call(conn, build_rows(payload))


def _columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str, bool]]:
    rows = conn.execute(
        """
        SELECT column_name, data_type, is_generated = 'ALWAYS' OR column_default IS NOT NULL
          FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = %s
         ORDER BY ordinal_position
        """,
        (table,),
    ).fetchall()
    return [(name, kind, bool(defaulted)) for name, kind, defaulted in rows]


def _clone_select(conn: psycopg.Connection[Any], table: str) -> sql.Composed:
    """``INSERT INTO table SELECT`` that copies the template rows onto the cloned calls."""
    targets: list[sql.Composable] = []
    values: list[sql.Composable] = []
    for name, kind, defaulted in _columns(conn, table):
        column = sql.Identifier(name)
        source = sql.SQL("c.{}").format(column)
        if name == "call_id":
            value: sql.Composable = sql.SQL("m.new_id")
        elif table == "call_rag_retrievals" and name == "id":
            value = sql.SQL("md5(m.new_id::text || c.id::text)::uuid")
        elif name == "retrieval_id":
            value = sql.SQL("md5(m.new_id::text || c.retrieval_id::text)::uuid")
        elif name == "twilio_call_sid":
            value = sql.SQL("'CA' || replace(m.new_id::text, '-', '')")
        elif defaulted and name == "id":
            continue  # generated by PostgreSQL
        elif kind == "timestamp with time zone":
            value = sql.SQL("{} + m.shift").format(source)
        else:
            value = source
        targets.append(column)
        values.append(value)
    return sql.SQL(
        "INSERT INTO {table} ({targets}) SELECT {values} FROM {table} c"
        " JOIN clone_map m ON m.old_id = c.call_id"
    ).format(
        table=sql.Identifier(table),
        targets=sql.SQL(", ").join(targets),
        values=sql.SQL(", ").join(values),
    )


def _clone(conn: psycopg.Connection[Any], copies: int) -> None:
    """``copies`` new calls in the expired month, each a clone of a template call."""
    lower, upper = month_bounds(EXPIRED_MONTH)
    span = (upper - lower).total_seconds() - 3600
    conn.execute("DROP TABLE IF EXISTS clone_map")
    conn.execute(
        """
        CREATE TEMP TABLE clone_map AS
        WITH templates AS (
            SELECT call_id, started_at, row_number() OVER (ORDER BY started_at) - 1 AS ord,
                   count(*) OVER () AS total
              FROM calls
        )
        SELECT gen_random_uuid() AS new_id, t.call_id AS old_id,
               (%(lower)s + random() * %(span)s * interval '1 second') - t.started_at AS shift
          FROM generate_series(0, %(copies)s - 1) AS g
          JOIN templates t ON t.ord = g %% t.total
        """,
        {"lower": lower, "span": span, "copies": copies},
    )
    conn.execute("CREATE INDEX ON clone_map (old_id)")
    for table in CALL_TABLES:
        conn.execute(_clone_select(conn, table))
    conn.execute("DROP TABLE clone_map")


def _make_history(url: str, calls: int, templates: int) -> None:
    engine = build_engine(_settings(url))
    try:
        _persist_templates(engine, templates)
    finally:
        engine.dispose()
    with psycopg.connect(url) as conn:
        _clone(conn, calls - templates)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# -- measurements ----------------------------------------------------------------------------


def _delete_all(conn: psycopg.Connection[Any]) -> tuple[int, float]:
    cut = retention_cutoff(conn, now=RUN_AT, retention_days=POLICY.retention_days)
    assert cut is not None
    started = time.perf_counter()
    deleted = 0
    while True:
        calls, _ = delete_call_batch(
            conn, before=cut.calls_before, keep_from=cut.keep_from, limit=POLICY.batch_size
        )
        if not calls:
            break
        deleted += calls
    return deleted, time.perf_counter() - started


def _month_mb(conn: psycopg.Connection[Any]) -> float:
    row = conn.execute(
        """
        SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
          FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
         WHERE ns.nspname = current_schema() AND c.relname LIKE %s
        """,
        (f"%\\_{EXPIRED_MONTH:%Y\\_%m}",),
    ).fetchone()
    return float(row[0]) / 2**20 if row else 0.0


def _row_delete_seconds(conn: psycopg.Connection[Any]) -> float:
    """What deleting the month's timeline rows one by one would cost (rolled back)."""
    lower, upper = month_bounds(EXPIRED_MONTH)
    started = time.perf_counter()
    with conn.transaction(force_rollback=True):
        for table in PARTITIONED_TABLES:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE timestamp >= %s AND timestamp < %s").format(
                    sql.Identifier(table)
                ),
                (lower, upper),
            )
    return time.perf_counter() - started


def _settle(conn: psycopg.Connection[Any]) -> None:
    """Write everything out, as it long is for a month that expired a year after it ended."""
    conn.execute("CHECKPOINT")
    os.sync()


def _month_retention(url: str, calls: int, templates: int) -> dict[str, float]:
    _make_history(url, calls, templates)
    with psycopg.connect(url, autocommit=True) as conn:
        month_mb = _month_mb(conn)
        _settle(conn)
        row_delete_seconds = _row_delete_seconds(conn)
        _settle(conn)
        deleted, delete_seconds = _delete_all(conn)
        assert deleted == calls, (deleted, calls)
        # In production a month's calls were deleted day by day, and vacuumed, long before the
        # month itself expires; without this the guard query walks 100k dead index entries.
        conn.execute("VACUUM ANALYZE")
        _settle(conn)
        marks: dict[str, float] = {}

        def mark(**counts: Any) -> None:
            marks[counts["phase"]] = time.perf_counter()  # the last one of each phase

        started = time.perf_counter()
        report = enforce_retention(conn, now=RUN_AT, policy=POLICY, progress=mark)
        partition_seconds = time.perf_counter() - started
        assert not report.errors, report.errors
        assert len(report.dropped) == len(PARTITIONED_TABLES), report.dropped
    return {
        "calls": calls,
        "month_mb": month_mb,
        "partition_seconds": partition_seconds,
        # Catalog work: finding the months, detaching them concurrently, moving them into the
        # archive. The rest is the four DROP TABLEs: the filesystem freeing the files.
        "detach_archive_seconds": marks["archive"] - started,
        "drop_seconds": started + partition_seconds - marks["archive"],
        "row_delete_seconds": row_delete_seconds,
        "delete_seconds": delete_seconds,
        "delete_calls_per_second": calls / delete_seconds,
    }


@dataclass
class _Ingest:
    """Finalizes running in threads; latencies and longest lock waits kept per phase."""

    settings: Settings
    phase: str = "baseline"
    latencies: dict[str, list[float]] = field(default_factory=dict)
    lock_waits: dict[str, float] = field(default_factory=dict)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _write(self, engine: Engine, worker: int) -> None:
        seed = worker * 1_000_000
        while not self._stop.is_set():
            seed += 1
            body = _payload(seed, datetime.now(UTC) - timedelta(seconds=30))
            phase = self.phase
            started = time.perf_counter()
            try:
                finalize_call(body, settings=self.settings, task_id=None, engine=engine)
            except Exception:
                self.failures += 1
                continue
            self.latencies.setdefault(phase, []).append(time.perf_counter() - started)

    def _sample(self) -> None:
        with psycopg.connect(self.settings.libpq_url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    """
                    SELECT coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)), 0)
                      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE NOT l.granted AND a.application_name = %s
                    """,
                    (WRITER_APP,),
                ).fetchone()
                wait = float(row[0]) if row else 0.0
                phase = self.phase
                self.lock_waits[phase] = max(self.lock_waits.get(phase, 0.0), wait)
                time.sleep(0.002)

    @contextmanager
    def running(self, writers: int = 2) -> Iterator[None]:
        engine = build_engine(self.settings)
        threads = [
            threading.Thread(target=self._write, args=(engine, n), daemon=True)
            for n in range(writers)
        ]
        threads.append(threading.Thread(target=self._sample, daemon=True))
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=60)
            engine.dispose()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"failures": self.failures}
        for phase, values in self.latencies.items():
            ordered = sorted(values)
            out[phase] = {
                "finalizes": len(values),
                "p50_ms": statistics.median(ordered) * 1000,
                "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
                "max_ms": ordered[-1] * 1000,
                "max_lock_wait_ms": self.lock_waits.get(phase, 0.0) * 1000,
            }
        return out


def _ingest_stall(url: str, sizes: Sizes) -> dict[str, Any]:
    _make_history(url, sizes.stall_calls, sizes.templates)
    ingest = _Ingest(_settings(url))
    timings: dict[str, float] = {}
    with ingest.running():
        time.sleep(sizes.baseline_seconds)
        with psycopg.connect(url, autocommit=True) as conn:
            ingest.phase = "rotation"
            started = time.perf_counter()
            today = datetime.now(UTC).date()
            created = rotate_partitions(conn, today=today, months_ahead=sizes.rotation_months)
            timings["rotation_seconds"] = time.perf_counter() - started
            timings["rotation_partitions_created"] = len(created.created)
            ingest.phase = "retention"
            started = time.perf_counter()
            report = enforce_retention(conn, now=RUN_AT, policy=POLICY)
            timings["retention_seconds"] = time.perf_counter() - started
            assert not report.errors, report.errors
            ingest.phase = "after"
            time.sleep(0.5)
    return {**timings, "ingest": ingest.summary()}


def run(*, quick: bool = False, workdir: Path | None = None) -> dict[str, Any]:
    """Run every measurement; return the figures (and print them)."""
    sizes = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="callstore-bench-", dir=workdir) as tmp:
        paths = stack.paths(Path(tmp))
        admin = stack.start_postgres(paths)
        try:
            configure_logging(_settings(admin))
            urls = {}
            for name in ("small", "large", "stall"):
                url = stack.create_database(admin, f"retention_{name}")
                stack.migrate_database(url, premake_months=0)
                urls[name] = url
            small = _month_retention(urls["small"], sizes.small, sizes.templates)
            large = _month_retention(urls["large"], sizes.large, sizes.templates)
            stall = _ingest_stall(urls["stall"], sizes)
        finally:
            stack.stop_postgres(paths, mode="fast")
    results: dict[str, Any] = {
        "quick": quick,
        "month_retention": {"small": small, "large": large},
        "month_retention_ratio": large["partition_seconds"] / small["partition_seconds"],
        "detach_archive_ratio": large["detach_archive_seconds"] / small["detach_archive_seconds"],
        "delete_calls_per_second": large["delete_calls_per_second"],
        "delete_batch_size": POLICY.batch_size,
        "stall": stall,
    }
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    small = results["month_retention"]["small"]
    large = results["month_retention"]["large"]
    print("retention of one expired month: its partitions detached concurrently, archived, dropped")
    for item in (small, large):
        print(
            f"  {item['calls']:>7,} calls ({item['month_mb']:7.1f} MB of timeline):"
            f" partitions {item['partition_seconds'] * 1000:7.1f} ms"
            f" = detach+archive {item['detach_archive_seconds'] * 1000:6.1f} ms"
            f" + drop {item['drop_seconds'] * 1000:6.1f} ms"
            f" (deleting those rows instead: {item['row_delete_seconds'] * 1000:8.1f} ms);"
            f" batched delete of the calls {item['delete_seconds']:6.2f} s"
        )
    print(
        f"  large/small: partitions {results['month_retention_ratio']:.2f},"
        f" detach+archive {results['detach_archive_ratio']:.2f}"
    )
    print(
        f"batched delete, {results['delete_batch_size']} calls per transaction: "
        f"{results['delete_calls_per_second']:,.0f} calls/s"
    )
    stall = results["stall"]
    print(
        f"ingest during maintenance (2 finalize threads; rotation made "
        f"{stall['rotation_partitions_created']} partitions in {stall['rotation_seconds']:.2f} s, "
        f"retention took {stall['retention_seconds']:.2f} s):"
    )
    for phase in ("baseline", "rotation", "retention"):
        item = stall["ingest"].get(phase)
        if item is None:
            continue
        print(
            f"  {phase:<9} {item['finalizes']:>5} finalizes  p50 {item['p50_ms']:6.1f} ms"
            f"  p99 {item['p99_ms']:6.1f} ms  max {item['max_ms']:6.1f} ms"
            f"  longest lock wait {item['max_lock_wait_ms']:6.1f} ms"
        )
    print(f"  failed finalizes: {stall['ingest']['failures']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main("python -m bench.retention", __doc__, run, argv)


if __name__ == "__main__":
    main()


def bench_section(quick: bool) -> dict[str, Any]:
    """The retention figures for ``python -m bench``."""
    return run(quick=quick)


def markdown(results: dict[str, Any]) -> list[str]:
    """The retention section of docs/benchmarks.md."""
    small = results["month_retention"]["small"]
    large = results["month_retention"]["large"]
    lines = [
        "## Retention",
        "",
        "An expired month: its partitions detached concurrently, moved to `archive`, dropped after",
        "the grace period, at two sizes of history:",
        "",
        "| history | timeline MB | detach + archive | drop | deleting the same rows instead |",
        "|---|---|---|---|---|",
    ]
    for item in (small, large):
        lines.append(
            f"| {item['calls']:,} calls | {item['month_mb']:,.0f} | "
            f"{item['detach_archive_seconds'] * 1000:,.1f} ms | {item['drop_seconds'] * 1000:,.1f} ms | "
            f"{item['row_delete_seconds'] * 1000:,.0f} ms |"
        )
    stall = results["stall"]
    lines += [
        "",
        (
            f"Large over small: partitions {results['month_retention_ratio']:.2f}, detach + "
            f"archive {results['detach_archive_ratio']:.2f} (a drop, not a delete). The batched "
            f"delete of expired calls ({results['delete_batch_size']} per transaction) ran at "
            f"{results['delete_calls_per_second']:,.0f} calls/s."
        ),
        "",
        "Finalizes running while maintenance ran (2 threads):",
        "",
        "| phase | finalizes | p50 | p99 | max | longest lock wait |",
        "|---|---|---|---|---|---|",
    ]
    for phase in ("baseline", "rotation", "retention"):
        item = stall["ingest"].get(phase)
        if item is not None:
            lines.append(
                f"| {phase} | {item['finalizes']} | {item['p50_ms']:.1f} ms | {item['p99_ms']:.1f} ms"
                f" | {item['max_ms']:.1f} ms | {item['max_lock_wait_ms']:.1f} ms |"
            )
    return lines
