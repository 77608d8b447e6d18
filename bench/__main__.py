"""``python -m bench [--quick] [--repeat N] [--write-docs | --no-docs] [--json FILE]``: measure,
print, and write docs/benchmarks.md.

A full run writes the document; a quick run is a smoke run on small sizes, whose figures must
never replace the committed ones, so it writes it only when told to (``--write-docs``).

The measurements the targets read (the persist paths against the binary COPY ceiling, the
hand-off latency, the end to end, the anatomy) run ``--repeat`` times, 3 by default (1 with
``--quick``), each repetition's ratios taken from its own baseline; every other section runs
once.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import anatomy, pipeline, report, targets
from bench import persist as persist_bench
from bench.common import BenchStack, bench_stack
from bench.spread import median_merge
from worker.settings import Settings

#: The sections of a repetition merged as medians (the anatomy is shown as one repetition).
REPEATED = ("persist", "handoff", "end_to_end")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (about two minutes)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--repeat",
        type=_positive,
        help="repetitions of the measurements the targets read (3; 1 with --quick)",
    )
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite docs/benchmarks.md even after a --quick run",
    )
    docs.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least one repetition")
    return value


def repetitions(args: argparse.Namespace) -> int:
    """How many times the target measurements run: as asked, else 3, or 1 for a quick run."""
    if args.repeat is not None:
        return int(args.repeat)
    return 1 if args.quick else 3


def writes_docs(args: argparse.Namespace) -> bool:
    """Whether this run replaces docs/benchmarks.md: a full run does, a quick one only when
    told to, and neither when told not to."""
    if args.no_docs:
        return False
    return bool(args.write_docs or not args.quick)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    started = time.time()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
    }
    repeat = repetitions(args)
    runs: list[dict[str, Any]] = []
    with bench_stack() as bench:
        url = bench.database("bench")
        settings = bench.settings(url)
        work = persist_bench.workload(quick=args.quick)
        for n in range(repeat):
            runs.append(_repetition(bench, settings, work, n, repeat, quick=args.quick))
        bench.flush_broker()
        print("compression ...", flush=True)
        results["compression"] = pipeline.compression(settings, quick=args.quick)
        bench.flush_broker()
        print("worker memory ...", flush=True)
        results["memory"] = pipeline.worker_memory(bench, settings, quick=args.quick)
    results.update(merge_repetitions(runs))
    results["anatomy"]["waste"] = anatomy.waste_figures(quick=args.quick)
    for section in report.optional_sections():
        if section.key in results:
            continue
        print(f"{section.title} ...", flush=True)
        results[section.key] = section.run(args.quick)

    results["targets"] = targets.evaluate(runs)
    for key, figure in results["targets"].items():
        results[key] = figure["median"]
    results["duration_seconds"] = round(time.time() - started, 1)

    text = report.markdown(results)
    print(text)
    if writes_docs(args):
        report.DOCS.write_text(text)
        print(f"wrote {report.DOCS}")
    else:
        print(f"{report.DOCS} left as it is (--write-docs writes it after a quick run)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


def merge_repetitions(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sections the targets read, as the document shows them: medians of the
    repetitions, and the anatomy of the repetition with the median ratio."""
    merged = {key: median_merge([run[key] for run in runs]) for key in REPEATED}
    merged["anatomy"] = anatomy.combine([run["anatomy"] for run in runs])
    return merged


def _repetition(
    bench: BenchStack,
    settings: Settings,
    work: persist_bench.Workload,
    n: int,
    repeat: int,
    *,
    quick: bool,
) -> dict[str, Any]:
    """One repetition of every measurement a target reads, so that each ratio has its
    baseline from the same minutes of the machine."""
    of = f"[{n + 1}/{repeat}]"
    url = settings.database_url.get_secret_value()
    run: dict[str, Any] = {}
    print(f"{of} persist paths ...", flush=True)
    run["persist"] = persist_bench.run(
        url, "postgresql+psycopg://" + url.split("://", 1)[1], work, every_path=n == 0
    )
    print(f"{of} hand-off latency ...", flush=True)
    bench.flush_broker()
    run["handoff"] = pipeline.handoff_latency(settings, quick=quick, repetition=n)
    bench.flush_broker()
    print(f"{of} end to end with 1 and 2 workers ...", flush=True)
    run["end_to_end"] = pipeline.end_to_end(bench, settings, quick=quick, repetition=n)
    bench.flush_broker()
    print(f"{of} anatomy of a finalize ...", flush=True)
    run["anatomy"] = anatomy.measure_once(calls=anatomy.default_calls(quick))
    return run


if __name__ == "__main__":
    sys.exit(main())
