"""The finalize pipeline under load: hand-off latency, end to end, and worker memory.

* ``finalize_and_write`` latency for a ~100 KB call against the local Redis (what the voice
  runtime waits for), with and without zlib compression at several sizes;
* end-to-end calls/s of a burst with 1 and 2 worker processes (the capacity), and latency
  (hand-off to ``persisted_at``) at half of that capacity;
* the resident memory of a worker's pool process across thousands of tasks.

The hand-off and the end to end feed targets, so ``python -m bench`` runs them in each of its
repetitions: ``repetition`` draws other calls of the same shape each time.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import psycopg
from psycopg import sql

from bench.common import (
    BenchStack,
    percentile,
    start_workers,
    truncate,
    wait_persisted,
)
from models.payload import QUEUE, TASK_NAME
from worker.calls.child_tables import CALL_TABLES
from worker.calls.validation import encode
from worker.client.publisher import Publisher
from worker.client.queues import redis_client
from worker.client.recorder import CallRecorder
from worker.dev.simulate import CallShape, simulate_call
from worker.settings import Settings


def _recorders(
    count: int,
    settings: Settings,
    *,
    seed: int,
    shape: CallShape,
    publisher: Publisher | None = None,
    journal: bool = True,
) -> list[CallRecorder]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(minutes=20)
    return [
        simulate_call(
            random.Random(rng.getrandbits(48)),
            start=start,
            shape=shape,
            settings=settings,
            publisher=publisher,
            journal=journal,
        )
        for _ in range(count)
    ]


#: Seeds of one repetition are this far from the previous one's.
_REPETITION_SEEDS = 1000


def handoff_latency(settings: Settings, *, quick: bool, repetition: int = 0) -> dict[str, Any]:
    """``finalize_and_write`` p50/p99 for ~100 KB calls, sequentially on one event loop."""
    count = 150 if quick else 600
    publisher = Publisher(settings)
    recorders = _recorders(  # ~100 KiB each
        count,
        settings,
        seed=11 + repetition * _REPETITION_SEEDS,
        shape=CallShape(80, 90),
        publisher=publisher,
    )
    bodies = [encode(r.build_payload()) for r in recorders[:20]]
    sizes = [len(body) for body in bodies]

    async def drive() -> list[float]:
        timings = []
        for r in recorders[:10]:  # warm the connection pool and code paths
            await r.finalize_and_write(status="ended")
        for r in recorders[10:]:
            began = time.perf_counter()
            ok = await r.finalize_and_write(status="ended")
            timings.append((time.perf_counter() - began) * 1000)
            assert ok
        return timings

    timings = asyncio.run(drive())
    publisher.close()
    floor = _raw_push_ms(settings, bodies, len(timings))
    return {
        "payload_bytes_mean": sum(sizes) / len(sizes),
        "finalize_p50_ms": percentile(timings, 50),
        "finalize_p99_ms": percentile(timings, 99),
        "raw_push_p50_ms": percentile(floor, 50),
        "raw_push_p99_ms": percentile(floor, 99),
        "samples": len(timings),
    }


def _raw_push_ms(settings: Settings, bodies: list[bytes], count: int) -> list[float]:
    """The floor under a hand-off, in the same run: one ``LPUSH`` of a payload's bytes to the
    same Redis (its append-only file fsynced on every write, as the broker's is), ``count``
    times, one after another, with nothing else of the hand-off."""
    key = "bench:handoff:raw-push"
    client = redis_client(settings.broker_url.get_secret_value())
    timings = []
    try:
        for n in range(count):
            began = time.perf_counter()
            client.lpush(key, bodies[n % len(bodies)])
            timings.append((time.perf_counter() - began) * 1000)
            client.delete(key)
    finally:
        client.delete(key)
        client.close()
    return timings


def compression(settings: Settings, *, quick: bool) -> dict[str, Any]:
    """Publishing time of one payload with and without zlib, at several sizes."""
    publisher = Publisher(settings)
    repeats = 15 if quick else 40
    results = {}
    for messages in (160, 800, 3200):
        rec = _recorders(
            1, settings, seed=messages, shape=CallShape(messages, messages), journal=False
        )[0]
        payload = rec.build_payload()
        size = len(encode(payload))
        row = {}
        for compress in (False, True):
            samples = []
            for _ in range(repeats):
                began = time.perf_counter()
                publisher.send(TASK_NAME, args=[payload], queue="bench-sink", compress=compress)
                samples.append((time.perf_counter() - began) * 1000)
            row["zlib" if compress else "plain"] = percentile(samples, 50)
        results[f"{size // 1024} KiB"] = row
    publisher.close()
    return results


def _drive(recorders: list[CallRecorder], *, interval: float) -> dict[uuid.UUID, float]:
    """Finalize ``recorders`` one every ``interval`` seconds (0: as fast as possible)."""
    handed: dict[uuid.UUID, float] = {}

    async def drive() -> None:
        began = time.monotonic()
        for n, r in enumerate(recorders):
            delay = began + n * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            handed[r.call_id] = time.time()
            await r.finalize_and_write(status="ended")

    asyncio.run(drive())
    return handed


def _rows_stored(url: str) -> int:
    """Every row of every call stored, the ``calls`` rows and transcripts included."""
    with psycopg.connect(url, autocommit=True) as conn:
        return sum(_count(conn, table) for table in CALL_TABLES)


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def end_to_end(
    bench: BenchStack, settings: Settings, *, quick: bool, repetition: int = 0
) -> dict[str, Any]:
    """Calls/s of a burst of standard calls (the capacity), and hand-off-to-``persisted_at``
    latency at a steady half of that capacity, with 1 and 2 worker processes."""
    count = 80 if quick else 300
    seed = repetition * _REPETITION_SEEDS
    url = settings.database_url.get_secret_value()
    results: dict[str, Any] = {}
    for workers in (1, 2):
        pool = start_workers(settings, workers, bench.paths.data_dir / "logs")
        try:
            truncate(url)
            burst = _recorders(count, settings, seed=seed + 100 + workers, shape=CallShape())
            handed = _drive(burst, interval=0)
            persisted = wait_persisted(url, count, timeout=600)
            rate = count / (max(persisted.values()) - min(handed.values()))
            rows_per_call = _rows_stored(url) / len(persisted)

            truncate(url)
            steady = _recorders(count // 2, settings, seed=seed + 200 + workers, shape=CallShape())
            handed = _drive(steady, interval=2 / rate)
            persisted = wait_persisted(url, len(steady), timeout=600)
        finally:
            pool.stop()
        latencies = [(persisted[c] - handed[c]) * 1000 for c in persisted]
        results[f"{workers}_worker"] = {
            "calls": count,
            "calls_per_s": rate,
            "rows_per_call": rows_per_call,
            "rows_per_s": rate * rows_per_call,
            "steady_calls_per_s": rate / 2,
            "e2e_p50_ms": percentile(latencies, 50),
            "e2e_p99_ms": percentile(latencies, 99),
        }
    return results


def worker_memory(bench: BenchStack, settings: Settings, *, quick: bool) -> dict[str, Any]:
    """RSS of one pool process while it runs many small finalize tasks."""
    total = 2000 if quick else 10_000
    url = settings.database_url.get_secret_value()
    truncate(url)
    pool = start_workers(settings, 1, bench.paths.data_dir / "logs")
    samples: list[tuple[int, float]] = []
    try:
        parent = psutil.Process(pool.started[0].process.pid)
        child = parent.children()[0]
        publisher = Publisher(settings)
        start = datetime.now(UTC) - timedelta(minutes=5)
        shape = CallShape(4, 8)
        sent = 0
        step = total // 10
        while sent < total:
            for _ in range(step):
                rec = simulate_call(
                    random.Random(sent), start=start, shape=shape, announce=False, journal=False
                )
                rec.update_status("ended")
                publisher.send(TASK_NAME, args=[rec.build_payload()], queue=QUEUE)
                sent += 1
            wait_persisted(url, sent, timeout=600)
            samples.append((sent, child.memory_info().rss / 2**20))
        publisher.close()
    finally:
        pool.stop()
    first_mib = samples[0][1]
    last_mib = samples[-1][1]
    return {
        "tasks": total,
        "rss_mib": [{"tasks": n, "rss_mib": round(m, 1)} for n, m in samples],
        "rss_growth_mib": last_mib - first_mib,
        "rss_growth_ratio": last_mib / first_mib,
    }
