"""The backlog a Redis can hold: bytes per queued call, and a PostgreSQL outage under load.

``python -m bench.backlog [--rate R] [--outage S] [--quick] [--json FILE]``

1. **Bytes per queued call**: standard simulated calls published onto a queue nothing
   consumes, plain and zlib-compressed; Redis's ``used_memory`` and its append-only file grow
   by so much per call.
2. **An outage, scaled down**: one worker runs; PostgreSQL is stopped; calls are handed off
   through ``CallRecorder`` at R per second for S seconds while Redis's memory, the queue, the
   ``unacked`` hash, the worker's memory and the runtime's spool are sampled every second;
   then PostgreSQL comes back and the drain is timed, and every call must be stored once.
   Run twice: without a Redis memory limit, and with ``maxmemory`` set so that only part of
   the outage fits, to show what ``noeviction`` does when Redis is full (the recorder spools).

The per-hour figures in docs/reliability.md extrapolate these with the measured bytes per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import redis

from bench.common import BenchStack, bench_stack, standard_payloads, truncate, wait_count
from models.payload import TASK_NAME
from worker.client.publisher import Publisher
from worker.client.spool import Spool
from worker.dev import processes, stack
from worker.dev.simulate import CallShape, simulate_call
from worker.settings import Settings

HELD_QUEUE = "bench-backlog-held"
HOUR_AT_50 = 50 * 3600


def _redis(bench: BenchStack) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(bench.paths.redis_socket))


def _aof_bytes(bench: BenchStack) -> int:
    return sum(p.stat().st_size for p in bench.paths.redis_dir.rglob("*.aof*") if p.is_file())


def bytes_per_call(bench: BenchStack, settings: Settings, *, calls: int) -> dict[str, Any]:
    """Redis memory and append-only file bytes per queued standard call, plain and zlib."""
    payloads = standard_payloads(calls, seed=4)
    client = _redis(bench)
    publisher = Publisher(settings)
    found: dict[str, Any] = {}
    try:
        for compress in (False, True):
            bench.flush_broker()
            memory_before = int(client.info("memory")["used_memory"])
            aof_before = _aof_bytes(bench)
            for payload in payloads:
                publisher.send(TASK_NAME, args=[payload], queue=HELD_QUEUE, compress=compress)
            memory = int(client.info("memory")["used_memory"]) - memory_before
            message = client.lindex(HELD_QUEUE, 0) or b""
            per_call = memory / calls
            found["zlib" if compress else "plain"] = {
                "redis_bytes_per_call": per_call,
                "message_bytes": len(message),
                "aof_bytes_per_call": (_aof_bytes(bench) - aof_before) / calls,
                "calls_per_gib": 2**30 / per_call,
                "hour_at_50_per_s_gib": per_call * HOUR_AT_50 / 2**30,
            }
    finally:
        publisher.close()
        client.close()
        bench.flush_broker()
    return found


def _sample(
    client: redis.Redis, worker: psutil.Process, spool: Spool, began: float
) -> dict[str, float]:
    memory = client.info("memory")
    return {
        "t": round(time.monotonic() - began, 1),
        "redis_mib": int(memory["used_memory"]) / 2**20,
        "queued": int(client.llen("calls")),
        "unacked": int(client.hlen("unacked")),
        "worker_rss_mib": worker.memory_info().rss / 2**20,
        "spooled": len(spool.paths()),
    }


def outage(
    bench: BenchStack,
    settings: Settings,
    *,
    rate: float,
    seconds: float,
    maxmemory: int = 0,
    drain_timeout: float = 600,
) -> dict[str, Any]:
    """PostgreSQL down for ``seconds`` while calls arrive at ``rate``; then the drain."""
    url = settings.database_url.get_secret_value()
    truncate(url)
    bench.flush_broker()
    logging.getLogger("callstore.recorder").setLevel(logging.ERROR)  # one line per spooled call
    count = int(rate * seconds)
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=1)
    publisher = Publisher(settings)
    spool = Spool(settings.spool_dir)
    recorders = [
        simulate_call(
            random.Random(rng.getrandbits(48)),
            start=start,
            shape=CallShape(),
            announce=False,
            settings=settings,
            publisher=publisher,
            spool=spool,
        )
        for _ in range(count)
    ]
    client = _redis(bench)
    worker_process = processes.start_worker(
        "backlog", env=processes.settings_env(settings), log_dir=bench.paths.data_dir / "logs"
    )
    socket_dir = stack.postgres_socket_dir(bench.paths)
    samples: list[dict[str, float]] = []
    main = psutil.Process(worker_process.process.pid)
    memory_before = int(client.info("memory")["used_memory"])
    if maxmemory:
        client.config_set("maxmemory", memory_before + maxmemory)
    began = time.monotonic()
    try:
        stack.stop_postgres(bench.paths, mode="fast")

        async def drive() -> list[str | None]:
            delivered = []
            for n, recorder in enumerate(recorders):
                delay = began + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await recorder.finalize_and_write(status="ended")
                delivered.append(recorder.delivery)
                if time.monotonic() - began >= len(samples):
                    samples.append(_sample(client, main, spool, began))
            return delivered

        delivered = asyncio.run(drive())
        while time.monotonic() - began < seconds:
            time.sleep(0.2)
        at_peak = _sample(client, main, spool, began)
        samples.append(at_peak)
        stack.resume_postgres(bench.paths, socket_dir=socket_dir)
        back = time.monotonic()
        stored = 0
        while stored < count and time.monotonic() - back < drain_timeout:
            stored = wait_count(url, count, timeout=1.0)
            samples.append(_sample(client, main, spool, began))
        drained = time.monotonic() - back
        log = worker_process.log()
        worker_exited = not worker_process.alive()
    finally:
        worker_process.stop()
        client.config_set("maxmemory", 0)
        client.close()
        publisher.close()
        if stack.postgres_pid(bench.paths) is None:
            stack.resume_postgres(bench.paths, socket_dir=socket_dir)
    spooled = delivered.count("spooled")
    return {
        "rate": rate,
        "outage_seconds": seconds,
        "calls": count,
        "maxmemory_bytes": maxmemory,
        "enqueued": delivered.count("enqueued"),
        "spooled": spooled,
        "refused": delivered.count(None),
        "stored": stored,
        "drain_seconds": drained,
        "redis_growth_mib": (at_peak["redis_mib"] - memory_before / 2**20),
        "redis_mib_per_enqueued_call": (
            (at_peak["redis_mib"] - memory_before / 2**20) / max(count - spooled, 1)
        ),
        "worker_rss_growth_mib": at_peak["worker_rss_mib"] - samples[0]["worker_rss_mib"],
        "retries_logged": log.count("finalize will be retried"),
        "worker_exited": worker_exited,
        "unrecoverable_logged": log.count("Unrecoverable error"),
        "rejected_retries_logged": log.count("celery.exceptions.Reject"),
        "oom_errors_logged": log.count("OOM"),
        "errors_logged": [line[:300] for line in log.splitlines() if "error" in line.lower()][-12:],
        "samples": samples,
    }


def run(*, quick: bool, rate: float = 10.0, seconds: float | None = None) -> dict[str, Any]:
    outage_seconds = seconds or (15.0 if quick else 40.0)
    with bench_stack() as bench:
        url = bench.database("backlog")
        settings = bench.settings(url)
        print("backlog: bytes per queued call ...", flush=True)
        sizes = bytes_per_call(bench, settings, calls=50 if quick else 200)
        print(f"backlog: PostgreSQL down {outage_seconds:.0f} s at {rate} calls/s ...", flush=True)
        unbounded = outage(bench, settings, rate=rate, seconds=outage_seconds)
        fits = int(sizes["plain"]["redis_bytes_per_call"] * rate * outage_seconds / 2)
        print("backlog: the same with Redis full half way ...", flush=True)
        bounded = outage(
            bench, settings, rate=rate, seconds=outage_seconds, maxmemory=fits, drain_timeout=60
        )
    return {"sizes": sizes, "outage": unbounded, "outage_maxmemory": bounded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__)
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second (10)")
    parser.add_argument("--outage", type=float, help="seconds PostgreSQL is down (40; 15 quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = run(quick=args.quick, rate=args.rate, seconds=args.outage)
    summary = {k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in result.items()}
    print(json.dumps(summary, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
