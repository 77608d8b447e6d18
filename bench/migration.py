"""``python -m bench.migration [--quick] [--json FILE]``: the Azure migration's speed and memory.

For each size (10 k and 100 k entities; 2 k and 10 k with ``--quick``) it fills a private
Azurite with ``worker.dev.legacy_data`` (the contract's cases plus realistic bulk), then, in the
same run on the same machine, twice each and alternated (these machines are shared and noisy;
the best run is the least disturbed one):

* scans every source with the raw SDK (paged reads, nothing else): the baseline;
* migrates everything into a fresh database of a private embedded PostgreSQL, batch after batch
  as ``callstore migrate azure run --until-done`` does, and times the first round (every record
  read, transformed and written once): overall, and steady (without the first batch, which
  carries the small sources, the partitions of every old month and the connections). The
  target: the steady rate at the largest size is at least 70 % of the raw scan rate;
* times the round that follows (every source re-read over the overlap window, nothing new: what
  a caught-up beat run costs);

and migrates once more into another fresh database with ``tracemalloc`` on, for the peak of
Python memory, which must not grow with the number of entities.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from worker.azure import sources
from worker.azure.batch import BatchResult, run_batches
from worker.azure.client import AzureStorage
from worker.azure.readers import read_pages
from worker.db import build_engine
from worker.dev import azurite, stack
from worker.dev import legacy_data as generate
from worker.settings import Settings

TARGET_RATIO = 0.70
SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000, 10_000)
BATCH_SIZE = 1000


def raw_scan(storage: AzureStorage) -> tuple[int, float]:
    """Records read by paging every source with the SDK, and the seconds it took."""
    started = time.perf_counter()
    count = 0
    for source in sources.SOURCES:
        continuation: Any = None
        while True:
            pages = list(
                read_pages(storage, source, since=None, continuation=continuation, limit=1000)
            )
            count += sum(len(page.records) for page in pages)
            if pages[-1].complete:
                break
            continuation = pages[-1].continuation
    return count, time.perf_counter() - started


def _database(admin_url: str, template: str, name: str) -> str:
    stack.drop_database(admin_url, name)
    return stack.create_database(admin_url, name, template=template)


def migrate(settings: Settings, storage: AzureStorage, *, batch_size: int) -> dict[str, Any]:
    """Migrate until caught up; the rates of the first round (overall, and steady: without its
    first batch, which carries the small sources, the partitions of every old month and the
    connections) and of the caught-up round that follows."""
    engine = build_engine(settings)
    marks: list[tuple[float, int, bool]] = []
    started = time.perf_counter()

    def on_batch(result: BatchResult) -> None:
        marks.append((time.perf_counter(), result.scanned, result.round_complete))

    try:
        run = run_batches(
            settings,
            clock=lambda: datetime.now(UTC),
            storage=storage,
            engine=engine,
            batch_size=batch_size,
            on_batch=on_batch,
            log_batches=False,
        )
    finally:
        engine.dispose()
    assert run.caught_up
    end = next(i for i, m in enumerate(marks) if m[2])
    records = sum(m[1] for m in marks[: end + 1])
    seconds = marks[end][0] - started
    steady_records = sum(m[1] for m in marks[1 : end + 1])
    steady_seconds = marks[end][0] - marks[0][0]
    rest_seconds = marks[-1][0] - marks[end][0]
    rest_records = sum(m[1] for m in marks[end + 1 :])
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "per_s": round(records / seconds),
        "steady_per_s": round(steady_records / steady_seconds) if steady_seconds else None,
        "migrated": run.total("migrated"),
        "rejected": run.total("rejected"),
        "batches": len(marks),
        "caught_up_round_per_s": round(rest_records / rest_seconds) if rest_seconds else None,
    }


def peak_memory(settings: Settings, storage: AzureStorage, *, batch_size: int) -> float:
    """Peak of Python memory (MiB, ``tracemalloc``) while migrating everything."""
    engine = build_engine(settings)
    tracemalloc.start()
    try:
        run_batches(
            settings,
            clock=lambda: datetime.now(UTC),
            storage=storage,
            engine=engine,
            batch_size=batch_size,
            log_batches=False,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        engine.dispose()
    return round(peak / 2**20, 1)


def run(*, quick: bool = False, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Measure every size; return the figures (also printed)."""
    sizes = QUICK_SIZES if quick else SIZES
    results: dict[str, Any] = {"batch_size": batch_size, "target_ratio": TARGET_RATIO, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="callstore-bench-migration-") as directory:
        paths = stack.paths(Path(directory) / "stack")
        admin_url = stack.start_postgres(paths)
        server = azurite.start(log_dir=Path(directory) / "azurite")
        try:
            template = "bench_migration_template"
            stack.drop_database(admin_url, template)
            url = stack.create_database(admin_url, template)
            stack.migrate_database(url, premake_months=3)
            storage = AzureStorage(server.connection_string)
            written = generate.write_cases(storage)
            seed = 1
            for size in sizes:
                print(f"azure migration: filling Azurite up to {size} entities ...", flush=True)
                while written.total < size:
                    calls = generate.bulk_calls_for(size - written.total)
                    written.merge(generate.write_bulk(storage, calls=calls, seed=seed))
                    seed += 1
                results["sizes"][str(size)] = measure(
                    admin_url, template, storage, server, size, written.total, batch_size
                )
        finally:
            server.stop()
            stack.stop_postgres(paths, mode="immediate")
    sizes_found = list(results["sizes"].values())
    # Small sizes are dominated by fixed costs; the target is about throughput.
    results["ratio"] = sizes_found[-1]["ratio"]
    results["memory_growth"] = round(sizes_found[-1]["peak_mib"] / sizes_found[0]["peak_mib"], 2)
    print(summary(results))
    return results


def measure(
    admin_url: str,
    template: str,
    storage: AzureStorage,
    server: azurite.Azurite,
    size: int,
    entities: int,
    batch_size: int,
) -> dict[str, Any]:
    """The raw scan and the migration twice each, alternated; the best of each (the run least
    disturbed by other load on a shared machine), then the memory run."""
    settings = Settings(
        _env_file=None,
        database_url=stack.create_database(admin_url, template),  # replaced for each run
        broker_url="redis+socket:///nonexistent/redis.socket",
        azure_connection_string=server.connection_string,
    )
    scans: list[float] = []
    runs: list[dict[str, Any]] = []
    for attempt in range(2):
        count, seconds = raw_scan(storage)
        scans.append(count / seconds)
        url = _database(admin_url, template, f"bench_migration_{size}_{attempt}")
        print(f"azure migration: migrating {entities} entities ...", flush=True)
        runs.append(
            migrate(
                settings.model_copy(update={"database_url": SecretStr(url)}),
                storage,
                batch_size=batch_size,
            )
        )
        stack.drop_database(admin_url, f"bench_migration_{size}_{attempt}")
    memory_url = _database(admin_url, template, f"bench_migration_{size}_memory")
    peak = peak_memory(
        settings.model_copy(update={"database_url": SecretStr(memory_url)}),
        storage,
        batch_size=batch_size,
    )
    stack.drop_database(admin_url, f"bench_migration_{size}_memory")
    raw = max(scans)
    best = max(runs, key=lambda r: r["per_s"])
    steady = max(r["steady_per_s"] or 0 for r in runs)
    return {
        "entities": entities,
        "raw_scan_per_s": round(raw),
        "raw_scan_runs_per_s": [round(x) for x in scans],
        "migrated_per_s": best["per_s"],
        "migrated_runs_per_s": [r["per_s"] for r in runs],
        "steady_per_s": steady,
        "ratio": round(steady / raw, 2),
        "overall_ratio": round(best["per_s"] / raw, 2),
        "first_round_seconds": best["seconds"],
        "caught_up_round_per_s": best["caught_up_round_per_s"],
        "migrated": best["migrated"],
        "rejected": best["rejected"],
        "batches": best["batches"],
        "peak_mib": peak,
    }


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"Azure migration (batch size {results['batch_size']}; best of 2 runs each):",
        (
            f"{'entities':>9} {'raw scan/s':>11} {'migrated/s':>11} {'steady/s':>9} "
            f"{'ratio':>6} {'overall':>8} {'caught-up/s':>12} {'peak MiB':>9}"
        ),
    ]
    for figures in results["sizes"].values():
        lines.append(
            f"{figures['entities']:>9} {figures['raw_scan_per_s']:>11} "
            f"{figures['migrated_per_s']:>11} {figures['steady_per_s']:>9} "
            f"{figures['ratio']:>6.2f} {figures['overall_ratio']:>8.2f} "
            f"{figures['caught_up_round_per_s'] or '-':>12} {figures['peak_mib']:>9}"
        )
    verdict = "ok" if results["ratio"] >= TARGET_RATIO else "BELOW TARGET"
    lines.append(
        f"ratio (steady migration / raw scan) at the largest size {results['ratio']:.2f}"
        f" (target {TARGET_RATIO:.2f}: {verdict}); peak memory x{results['memory_growth']}"
        f" for x{_growth(results)} entities"
    )
    return "\n".join(lines)


def _growth(results: dict[str, Any]) -> float:
    sizes = [int(s["entities"]) for s in results["sizes"].values()]
    return round(sizes[-1] / sizes[0], 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.migration", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 k and 10 k entities (< 1 min)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args(argv)
    results = run(quick=args.quick, batch_size=args.batch_size)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def bench_section(quick: bool) -> dict[str, Any]:
    """The migration figures for ``python -m bench``."""
    return run(quick=quick)


def markdown(results: dict[str, Any]) -> list[str]:
    """The migration section of docs/benchmarks.md."""
    lines = [
        "## Azure migration",
        "",
        (
            f"Legacy data written into Azurite by the generator, then migrated with batches of "
            f"{results['batch_size']}; the raw scan reads the same tables and containers with the "
            'SDK and does nothing else. Best of two runs each; "steady" leaves out the first '
            "batch's one-off costs."
        ),
        "",
        "| entities | raw SDK scan/s | migrated/s (steady) | ratio | peak memory MiB |",
        "|---|---|---|---|---|",
    ]
    for f in results["sizes"].values():
        lines.append(
            f"| {f['entities']:,} | {f['raw_scan_per_s']:,} | {f['steady_per_s']:,} | "
            f"{f['ratio']:.2f} | {f['peak_mib']} |"
        )
    lines += [
        "",
        (
            f"Target: at least {results['target_ratio']:.2f} of the raw scan rate at the largest size "
            f"({results['ratio']:.2f} measured); peak memory grew by a factor of "
            f"{results['memory_growth']} while the entities grew by {_growth(results)}."
        ),
    ]
    return lines
