"""The anatomy of a finalize: where a worker's CPU goes per call, stage by stage.

``python -m bench.anatomy [--calls N] [--concurrency C] [--repeat R] [--quick] [--write-docs]
[--json FILE]``

A real ``celery worker`` (prefork, as production runs it) works through N standard simulated
calls (``bench.common.standard_payloads``) with a CPU sampler in its main process and in each
pool process (``bench.anatomy_app``, ``bench.sampler``). The calls are queued aside first and
moved onto the ``calls`` queue in one ``RENAME`` once the sampling window is open, so the
window holds the worker's work on exactly those calls and nothing of the producer's. Each
process's sampled CPU is split into stages by frame rules (``bench.stages``) and scaled to the
CPU seconds the kernel counted for it in the window (``/proc``, net of the sampler's own
cost); PostgreSQL's and Redis's CPU over the same window give the ratios. What the table shows
as waste is ranked, with micro-measurements of each remedy, by ``bench.waste``.

Each repetition runs on a stack of its own, so that nothing else PostgreSQL holds (another
section's tables, their autovacuum) is counted as the calls' CPU; the section shows the
repetition whose worker-to-PostgreSQL ratio is the median, with every repetition's ratio.

The section replaces only its own part of docs/benchmarks.md (``--write-docs``; a full
``python -m bench`` run includes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import redis

from bench import report, sampler, stages, waste
from bench.common import (
    BenchStack,
    bench_stack,
    cpu_seconds,
    postgres_processes,
    redis_processes,
    standard_payloads,
    wait_count,
    wal_lsn,
)
from bench.sampler import DIRECTORY_ENV, WINDOW
from bench.spread import median_run
from models.payload import QUEUE, TASK_NAME, CallPayload
from worker.calls.persist import build_rows
from worker.calls.validation import encode
from worker.client.publisher import Publisher
from worker.dev import processes

APP = "bench.anatomy_app"
#: Where the measured calls wait until the window opens; nothing consumes it.
HELD_QUEUE = "bench-anatomy-held"
HEADING = "## The anatomy of a finalize"
WARMUP = 20
ROLES = ("main", "pool")


def _publish(publisher: Publisher, payloads: list[dict[str, Any]], queue: str) -> None:
    for payload in payloads:
        publisher.send(TASK_NAME, args=[payload], queue=queue)


def _shape(payloads: list[dict[str, Any]]) -> dict[str, float]:
    sizes = [len(encode(p)) for p in payloads]
    rows = [build_rows(CallPayload.model_validate(p)).counts() for p in payloads]
    return {
        "payload_bytes_mean": sum(sizes) / len(sizes),
        "rows_per_call_mean": sum(sum(r.values()) for r in rows) / len(rows),
    }


def _profiles(directory: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {role: [] for role in ROLES}
    for path in sorted(directory.glob("*.json")):
        record = sampler.load(path)
        found[record["role"]].append(record)
    return found


def measure(bench: BenchStack, *, calls: int, concurrency: int) -> dict[str, Any]:
    """Run the worker over ``calls`` standard calls under the samplers; the raw figures."""
    url = bench.database("anatomy")
    settings = bench.settings(url)
    payloads = standard_payloads(WARMUP + calls, seed=16)
    profile_dir = bench.paths.data_dir / "anatomy"
    profile_dir.mkdir(parents=True, exist_ok=True)
    window = profile_dir / WINDOW
    env = processes.settings_env(settings, **{DIRECTORY_ENV: str(profile_dir)})
    broker = redis.Redis(unix_socket_path=str(bench.paths.redis_socket))
    worker = processes.start_worker(
        "anatomy",
        env=env,
        log_dir=bench.paths.data_dir / "logs",
        concurrency=concurrency,
        app=APP,
    )
    try:
        publisher = Publisher(settings)
        _publish(publisher, payloads[:WARMUP], QUEUE)  # connections, caches, partitions
        wait_count(url, WARMUP, timeout=300)
        _publish(publisher, payloads[WARMUP:], HELD_QUEUE)
        publisher.close()
        main = psutil.Process(worker.process.pid)
        groups = {
            "main": [main],
            "pool": main.children(),
            "postgres": postgres_processes(bench),
            "redis": redis_processes(bench),
        }
        window.touch()
        before = {name: cpu_seconds(group) for name, group in groups.items()}
        wal_before = wal_lsn(url)
        started = time.monotonic()
        broker.rename(HELD_QUEUE, QUEUE)
        stored = wait_count(url, WARMUP + calls, timeout=1800)
        wall = time.monotonic() - started
        after = {name: cpu_seconds(group) for name, group in groups.items()}
        window.unlink()
        wal = wal_lsn(url) - wal_before
    finally:
        worker.stop()
        broker.close()
    if stored != WARMUP + calls:
        raise RuntimeError(
            f"only {stored} of {WARMUP + calls} calls stored:\n{worker.log()[-3000:]}"
        )
    return {
        "calls": calls,
        "concurrency": concurrency,
        **_shape(payloads[:50]),
        "wall_seconds": wall,
        "cpu_seconds": {name: after[name] - before[name] for name in groups},
        "wal_bytes": wal,
        "profiles": _profiles(profile_dir),
    }


def analyse(raw: dict[str, Any]) -> dict[str, Any]:
    """Per-stage CPU milliseconds per call, for the main process and the pool, from the
    samples' shares scaled to the CPU the kernel counted (less the sampler's own)."""
    calls = raw["calls"]
    cpu = raw["cpu_seconds"]
    per_stage: dict[str, dict[str, float]] = {}
    coverage: dict[str, dict[str, float]] = {}
    gc_ms: dict[str, dict[str, float]] = {}
    missing: dict[str, list[tuple[str, float]]] = {}
    heaviest: dict[str, dict[str, list[tuple[str, float]]]] = {}
    net: dict[str, float] = {}
    for role in ROLES:
        records = raw["profiles"][role]
        stacks = [item for record in records for item in record["stacks"]]
        sampled = sum(seconds for _, seconds in stacks)
        overhead = sum(record["overhead_seconds"] for record in records)
        net[role] = max(cpu[role] - overhead, 0.0)
        coverage[role] = {
            "kernel_seconds": cpu[role],
            "sampled_seconds": sampled,
            "overhead_seconds": overhead,
            "sampled_share": (sampled + overhead) / cpu[role] if cpu[role] else 0.0,
        }
        scale = net[role] * 1000 / calls / sampled if sampled else 0.0
        for key, seconds in stages.attribute(stacks).items():
            per_stage.setdefault(key, dict.fromkeys(ROLES, 0.0))[role] = seconds * scale
        gc_ms[role] = {}
        for record in records:
            for generation, seconds in record["gc_seconds"].items():
                gc_ms[role][generation] = gc_ms[role].get(generation, 0.0) + seconds * scale
        missing[role] = stages.unmatched(stacks)
        heaviest[role] = {
            key: [(frame, seconds * scale) for frame, seconds in found]
            for key, found in stages.heaviest_frames(stacks).items()
        }
    worker_ms = (net["main"] + net["pool"]) * 1000 / calls
    postgres_ms = cpu["postgres"] * 1000 / calls
    redis_ms = cpu["redis"] * 1000 / calls
    return {
        "calls": calls,
        "concurrency": raw["concurrency"],
        "payload_bytes_mean": raw["payload_bytes_mean"],
        "rows_per_call_mean": raw["rows_per_call_mean"],
        "calls_per_s": calls / raw["wall_seconds"],
        "cpu_ms_per_call": {
            "main": net["main"] * 1000 / calls,
            "pool": net["pool"] * 1000 / calls,
            "worker": worker_ms,
            "postgres": postgres_ms,
            "redis": redis_ms,
        },
        "worker_vs_postgres": worker_ms / postgres_ms if postgres_ms else 0.0,
        "main_vs_pool": net["main"] / net["pool"] if net["pool"] else 0.0,
        "wal_kib_per_call": raw["wal_bytes"] / 1024 / calls,
        "sampler": coverage,
        "stages": dict(sorted(per_stage.items(), key=lambda item: -sum(item[1].values()))),
        "gc_ms_per_call": gc_ms,
        "unmatched": missing,
        "heaviest_frames_ms": heaviest,
    }


def default_calls(quick: bool) -> int:
    return 150 if quick else 600


def measure_once(*, calls: int, concurrency: int = 1) -> dict[str, Any]:
    """One repetition on a stack of its own: the analysed figures."""
    with bench_stack() as bench:
        print(f"anatomy: {calls} standard calls, concurrency {concurrency} ...", flush=True)
        return analyse(measure(bench, calls=calls, concurrency=concurrency))


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The repetition of median worker-to-PostgreSQL ratio, whose stages add up, with the
    headline figures of every repetition."""
    chosen = dict(median_run(runs, "worker_vs_postgres"))
    chosen["runs"] = [
        {
            "worker_vs_postgres": run["worker_vs_postgres"],
            "worker_ms": run["cpu_ms_per_call"]["worker"],
            "postgres_ms": run["cpu_ms_per_call"]["postgres"],
            "calls_per_s": run["calls_per_s"],
        }
        for run in runs
    ]
    return chosen


def waste_figures(*, quick: bool) -> dict[str, Any]:
    """The micro-measurements of the waste, once, on a stack of their own."""
    with bench_stack() as bench:
        print("anatomy: micro-measurements of the waste ...", flush=True)
        return waste.run(bench.settings(bench.database("anatomy")), quick=quick)


def run(
    *, quick: bool, calls: int | None = None, concurrency: int = 1, repeat: int = 1
) -> dict[str, Any]:
    count = calls or default_calls(quick)
    result = combine([measure_once(calls=count, concurrency=concurrency) for _ in range(repeat)])
    result["waste"] = waste_figures(quick=quick)
    return result


def bench_section(quick: bool) -> dict[str, Any]:
    return run(quick=quick)


def _ms(value: float) -> str:
    return f"{value:.2f}"


def stage_table(r: dict[str, Any]) -> list[str]:
    cpu = r["cpu_ms_per_call"]
    lines = [
        "| stage | main process ms | pool process ms | total ms | share |",
        "|---|---|---|---|---|",
    ]
    for key, by_role in r["stages"].items():
        total = by_role["main"] + by_role["pool"]
        if total < 0.005:
            continue
        lines.append(
            f"| {stages.TITLES[key]} | {_ms(by_role['main'])} | {_ms(by_role['pool'])} | "
            f"{_ms(total)} | {total / cpu['worker']:.1%} |"
        )
    lines.append(
        f"| **worker, all stages** | **{_ms(cpu['main'])}** | **{_ms(cpu['pool'])}** | "
        f"**{_ms(cpu['worker'])}** | 100% |"
    )
    return lines


def _repetitions(r: dict[str, Any]) -> list[str]:
    runs = r.get("runs", [])
    if len(runs) < 2:
        return []
    return [
        (
            f"These are the figures of the repetition with the median ratio; over {len(runs)} "
            "repetitions worker CPU per call was "
            + ", ".join(f"{run['worker_vs_postgres']:.2f}" for run in runs)
            + " × PostgreSQL's."
        )
    ]


def markdown(r: dict[str, Any]) -> list[str]:
    cpu = r["cpu_ms_per_call"]
    s = r["sampler"]
    gc_pool = r["gc_ms_per_call"]["pool"]
    lines = [
        HEADING,
        "",
        (
            f"A `celery worker` (prefork, concurrency {r['concurrency']}) working through "
            f"{r['calls']} standard simulated calls ({r['payload_bytes_mean'] / 1024:.0f} KiB of "
            f"JSON, {r['rows_per_call_mean']:.0f} rows each on average) at "
            f"{r['calls_per_s']:.1f} calls/s, with a CPU-time sampler in the main process and "
            "the pool process (`bench/sampler.py`: each sample weighs the CPU used since the "
            "previous one, garbage collection booked apart). The samples are split into stages "
            "by the frame rules of `bench/stages.py` and scaled to the CPU the kernel counted "
            "for each process over the same window, less the sampler's own "
            f"({s['pool']['overhead_seconds'] / s['pool']['kernel_seconds']:.1%} in the pool). "
            "Milliseconds of CPU per call:"
        ),
        "",
        *stage_table(r),
        "",
        "| process | CPU ms per call |",
        "|---|---|",
        f"| worker main process | {_ms(cpu['main'])} |",
        f"| worker pool process | {_ms(cpu['pool'])} |",
        f"| **worker, both** | **{_ms(cpu['worker'])}** |",
        f"| PostgreSQL (every backend and helper) | {_ms(cpu['postgres'])} |",
        f"| Redis | {_ms(cpu['redis'])} |",
        "",
        (
            f"**Worker CPU per call is {r['worker_vs_postgres']:.2f} × PostgreSQL's** (the "
            f"target is ≤ 0.5); the main process spends {r['main_vs_pool']:.2f} × what the "
            f"pool process spends. Garbage collection in the pool: "
            + ", ".join(f"generation {g} {_ms(ms)} ms" for g, ms in sorted(gc_pool.items()))
            + f". WAL written: {r['wal_kib_per_call']:.0f} KiB per call."
        ),
        *_repetitions(r),
        (
            "Reproduce with `uv run python -m bench.anatomy --write-docs` (`--calls`, "
            "`--concurrency`, `--repeat`; `--json FILE` keeps the figures, the unmatched frames "
            "included)."
        ),
    ]
    return [*lines, "", *waste.markdown(r["waste"], r)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.anatomy", description=__doc__)
    parser.add_argument("--calls", type=int, help="calls measured (600; 150 with --quick)")
    parser.add_argument("--concurrency", type=int, default=1, help="pool processes (1)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions measured (1)")
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--write-docs", action="store_true", help="replace this section of docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    result = run(
        quick=args.quick, calls=args.calls, concurrency=args.concurrency, repeat=args.repeat
    )
    lines = markdown(result)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.write_docs:
        report.write_section(report.DOCS, lines)
        print(f"wrote its section of {report.DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
