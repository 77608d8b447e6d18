"""``python -m bench [--quick] [--write-docs | --no-docs] [--json FILE]``: measure, print, and
write docs/benchmarks.md.

A full run writes the document; a quick run is a smoke run on small sizes, whose figures must
never replace the committed ones, so it writes it only when told to (``--write-docs``).
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

from bench import persist as persist_bench
from bench import pipeline, report
from bench.common import bench_stack


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (about two minutes)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite docs/benchmarks.md even after a --quick run",
    )
    docs.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    return parser.parse_args(argv)


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
    with bench_stack() as bench:
        url = bench.database("bench")
        settings = bench.settings(url)
        print("persist paths ...", flush=True)
        results["persist"] = persist_bench.run(
            url, "postgresql+psycopg://" + url.split("://", 1)[1], quick=args.quick
        )
        print("hand-off latency ...", flush=True)
        bench.flush_broker()
        results["handoff"] = pipeline.handoff_latency(settings, quick=args.quick)
        bench.flush_broker()
        results["compression"] = pipeline.compression(settings, quick=args.quick)
        bench.flush_broker()
        print("end to end with 1 and 2 workers ...", flush=True)
        results["end_to_end"] = pipeline.end_to_end(bench, settings, quick=args.quick)
        bench.flush_broker()
        print("worker memory ...", flush=True)
        results["memory"] = pipeline.worker_memory(bench, settings, quick=args.quick)
    for section in report.optional_sections():
        print(f"{section.title} ...", flush=True)
        results[section.key] = section.run(args.quick)

    results["persist_vs_copy_ratio"] = results["persist"]["persist_vs_copy_ratio"]
    results["persist_vs_orm_ratio"] = results["persist"]["persist_vs_orm_ratio"]
    results["finalize_p99_ms"] = results["handoff"]["finalize_p99_ms"]
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


if __name__ == "__main__":
    sys.exit(main())
