"""What every benchmark section shares: a private embedded stack, timing and percentiles."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psutil
import psycopg
import redis
from psycopg import sql

from worker.calls.child_tables import CALL_TABLES
from worker.dev import processes, stack
from worker.dev.simulate import CallShape, simulate_call
from worker.settings import Settings

T = TypeVar("T")

#: What a benchmark empties between runs: every table of a call, and the dead letters.
TRUNCATED = (*CALL_TABLES, "failed_payloads")


@dataclass(frozen=True)
class BenchStack:
    paths: stack.StackPaths
    admin_url: str
    broker_url: str

    def database(self, name: str, *, premake_months: int = 3) -> str:
        """A freshly migrated database ``name`` (dropped first if it exists); its URL."""
        stack.drop_database(self.admin_url, name)
        url = stack.create_database(self.admin_url, name)
        stack.migrate_database(url, premake_months=premake_months)
        return url

    def flush_broker(self) -> None:
        """Empty Redis, so one section's leftover messages never reach the next one's workers."""
        redis.Redis(unix_socket_path=str(self.paths.redis_socket)).flushall()

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "broker_url": self.broker_url,
            "spool_dir": self.paths.data_dir / "spool",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)


@contextmanager
def bench_stack(*, redis: bool = True) -> Iterator[BenchStack]:
    """A private PostgreSQL (and Redis) in a temporary directory, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="callstore-bench-") as directory:
        paths = stack.paths(Path(directory))
        admin = stack.start_postgres(paths)
        broker = stack.start_redis(paths) if redis else ""
        try:
            yield BenchStack(paths, admin, broker)
        finally:
            if redis:
                stack.stop_redis(paths)
            stack.stop_postgres(paths, mode="immediate")


def standard_payloads(count: int, *, seed: int) -> list[dict[str, Any]]:
    """``count`` finalized payloads of the standard simulated call (``CallShape()``: 30-200
    messages, about 140 KiB of JSON), the same for the same seed, their calls an hour old."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    payloads = []
    for _ in range(count):
        rec = simulate_call(
            random.Random(rng.getrandbits(48)),
            start=start,
            shape=CallShape(),
            announce=False,
            journal=False,
        )
        rec.update_status("ended")
        payloads.append(rec.build_payload())
    return payloads


def truncate(url: str, tables: tuple[str, ...] = TRUNCATED) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
        conn.execute("CHECKPOINT")


def timed(function: Callable[[], T]) -> tuple[T, float]:
    """``function()`` and the seconds it took."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def section_main(
    prog: str, description: str | None, run: Callable[..., dict[str, Any]], argv: list[str] | None
) -> dict[str, Any]:
    """The command line of a benchmark section: ``[--quick] [--json FILE]``, then ``run``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    results = run(quick=args.quick)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def best_of(repeats: int, function: Callable[[], float]) -> float:
    """The best (lowest) of ``repeats`` measurements: the least disturbed by other load."""
    return min(function() for _ in range(repeats))


@dataclass
class Workers:
    """Worker processes started for a benchmark, each taking one task at a time."""

    started: list[processes.ManagedProcess]

    def stop(self) -> None:
        for process in self.started:
            process.stop()


def start_workers(
    settings: Settings, count: int, log_dir: Path, *, prefix: str = "bench-worker"
) -> Workers:
    """``count`` workers for ``settings``, started together; returns once all are ready."""
    env = processes.settings_env(settings)
    started = [
        processes.start_worker(f"{prefix}-{n}", env=env, log_dir=log_dir, ready_timeout=None)
        for n in range(count)
    ]
    for process in started:
        processes.wait_ready(process)
    return Workers(started)


def wait_count(url: str, count: int, *, timeout: float, table: str = "calls") -> int:
    """Wait until ``table`` holds ``count`` rows (or the deadline); the rows it holds. Counting,
    not fetching, so that waiting costs PostgreSQL next to nothing while its CPU is measured."""
    deadline = time.monotonic() + timeout
    statement = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(statement).fetchone()
            found = int(row[0]) if row else 0
            if found >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def wait_persisted(url: str, count: int, *, timeout: float) -> dict[uuid.UUID, float]:
    """``call_id -> persisted_at`` once ``count`` calls are stored (or at the deadline)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT call_id, persisted_at FROM calls").fetchall()
            if len(rows) >= count or time.monotonic() > deadline:
                return {r[0]: r[1].timestamp() for r in rows}
            time.sleep(0.2)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU seconds of ``processes`` (and their reaped children) so far."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def postgres_processes(bench: BenchStack) -> list[psutil.Process]:
    """The postmaster and every backend and helper process it runs now."""
    pid = stack.postgres_pid(bench.paths)
    if pid is None:
        return []
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children(recursive=True)]


def redis_processes(bench: BenchStack) -> list[psutil.Process]:
    pid = stack.redis_pid(bench.paths)
    return [psutil.Process(pid)] if pid else []


def wal_lsn(url: str) -> int:
    """PostgreSQL's current WAL position in bytes."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0
