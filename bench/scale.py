"""Scale-out: calls/s with 1, 2, 4, 8 worker processes on one PostgreSQL, and where time goes.

``python -m bench.scale [--workers 1,2,4,8] [--calls N] [--json FILE]``

For each worker count the queue is filled first (so the producer is never the limit), then the
workers are started and the drain is timed. CPU seconds are measured for the worker processes,
PostgreSQL and Redis, and WAL bytes for PostgreSQL, so the bottleneck is named from measurements:
on a machine with C cores the CPU ceiling is ``C / (cpu seconds per call, all processes)``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.common import (
    BenchStack,
    bench_stack,
    start_workers,
    truncate,
    wait_persisted,
)
from models.payload import QUEUE, TASK_NAME
from worker.client.publisher import Publisher
from worker.dev import stack
from worker.dev.simulate import CallShape, simulate_call
from worker.settings import Settings


def _fill_queue(settings: Settings, count: int, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    publisher = Publisher(settings)
    try:
        for _ in range(count):
            rec = simulate_call(
                random.Random(rng.getrandbits(48)),
                start=start,
                shape=CallShape(),
                announce=False,
                journal=False,
            )
            rec.update_status("ended")
            publisher.send(TASK_NAME, args=[rec.build_payload()], queue=QUEUE)
    finally:
        publisher.close()


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def _postgres_processes(bench: BenchStack) -> list[psutil.Process]:
    pid = stack.postgres_pid(bench.paths)
    if pid is None:
        return []
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children(recursive=True)]


def _wal_lsn(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def measure(bench: BenchStack, settings: Settings, workers: int, calls: int) -> dict[str, Any]:
    url = settings.database_url.get_secret_value()
    truncate(url)
    bench.flush_broker()
    _fill_queue(settings, calls, seed=workers)
    redis_pid = stack.redis_pid(bench.paths)
    redis_process = [psutil.Process(redis_pid)] if redis_pid else []
    pg_before = _cpu_seconds(_postgres_processes(bench))
    redis_before = _cpu_seconds(redis_process)
    wal_before = _wal_lsn(url)
    started = time.time()
    pool = start_workers(
        settings,
        workers,
        bench.paths.data_dir / "logs",
        prefix=f"scale{workers}",
    )
    try:
        worker_processes = []
        for managed in pool.started:
            parent = psutil.Process(managed.process.pid)
            worker_processes += [parent, *parent.children(recursive=True)]
        ready = time.time()
        worker_before = _cpu_seconds(worker_processes)
        persisted = wait_persisted(url, calls, timeout=1800)
        worker_cpu = _cpu_seconds(worker_processes) - worker_before
    finally:
        pool.stop()
    drained = max(persisted.values())
    wall = drained - ready
    pg_cpu = _cpu_seconds(_postgres_processes(bench)) - pg_before
    redis_cpu = _cpu_seconds(redis_process) - redis_before
    wal = _wal_lsn(url) - wal_before
    return {
        "workers": workers,
        "calls": len(persisted),
        "start_seconds": ready - started,
        "calls_per_s": len(persisted) / wall,
        "cpu_ms_per_call": {
            "workers": worker_cpu * 1000 / calls,
            "postgres": pg_cpu * 1000 / calls,
            "redis": redis_cpu * 1000 / calls,
        },
        "wal_kib_per_call": wal / 1024 / calls,
        "machine_cpu_busy": (worker_cpu + pg_cpu + redis_cpu) / (wall * (psutil.cpu_count() or 1)),
    }


def run(worker_counts: list[int], calls: int) -> dict[str, Any]:
    results = []
    with bench_stack() as bench:
        url = bench.database("scale")
        settings = bench.settings(url)
        for workers in worker_counts:
            print(f"scale: {workers} worker(s), {calls} calls ...", flush=True)
            results.append(measure(bench, settings, workers, calls))
    base = results[0]["calls_per_s"] / results[0]["workers"]
    for row in results:
        row["efficiency_vs_linear"] = row["calls_per_s"] / (base * row["workers"])
    last = results[-1]
    per_call = sum(last["cpu_ms_per_call"].values())
    return {
        "cpus": psutil.cpu_count(),
        "rows": results,
        "cpu_ms_per_call_total": per_call,
        "cpu_ceiling_calls_per_s": (psutil.cpu_count() or 1) * 1000 / per_call,
    }


def markdown(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Scale-out",
        "",
        (
            "Calls/s with N worker processes (one task at a time each) on one PostgreSQL, on "
            f"{r['cpus']} CPUs; the queue is filled before the workers start."
        ),
        "",
        "| workers | calls/s | efficiency vs linear | worker CPU ms/call | PostgreSQL CPU ms/call | Redis CPU ms/call | WAL KiB/call | machine CPU busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        cpu = row["cpu_ms_per_call"]
        lines.append(
            f"| {row['workers']} | {row['calls_per_s']:.1f} | {row['efficiency_vs_linear']:.2f} | "
            f"{cpu['workers']:.1f} | {cpu['postgres']:.1f} | {cpu['redis']:.1f} | "
            f"{row['wal_kib_per_call']:.0f} | {row['machine_cpu_busy']:.0%} |"
        )
    lines += [
        "",
        f"Every call costs about {r['cpu_ms_per_call_total']:.0f} ms of CPU across all processes, so",
        f"this machine's CPU ceiling is about {r['cpu_ceiling_calls_per_s']:.0f} calls/s.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--workers", default="1,2,4,8", help="comma-separated worker counts")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run([int(n) for n in args.workers.split(",")], args.calls)
    print("\n".join(markdown(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
