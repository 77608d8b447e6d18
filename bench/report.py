"""Rendering benchmark figures as docs/benchmarks.md, and the optional sections of other areas.

Sections owned by other parts of the system (retention, migration, consistency, the runtime's
recording and checkpoints, the client install) register here by module name; a section whose
module is absent is skipped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import targets

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    run: Callable[[bool], dict[str, Any]]
    markdown: Callable[[dict[str, Any]], list[str]]


#: (result key, title, module); each module has ``bench_section(quick) -> dict`` and
#: ``markdown(results) -> list[str]``.
OPTIONAL = (
    ("anatomy", "anatomy of a finalize", "bench.anatomy"),
    ("retention", "retention", "bench.retention"),
    ("migration", "Azure migration", "bench.migration"),
    ("consistency", "consistency check", "bench.consistency"),
    ("fulltext", "full-text search", "bench.fulltext"),
    ("recording", "recording and checkpoints", "bench.recording"),
    ("client_install", "client install", "bench.client_install"),
)


def optional_sections() -> list[Section]:
    found = []
    for key, title, module_name in OPTIONAL:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        if hasattr(module, "bench_section") and hasattr(module, "markdown"):
            found.append(Section(key, title, module.bench_section, module.markdown))
    return found


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _spread(figure: dict[str, Any]) -> str:
    runs = len(figure["values"])
    if runs == 1:
        return "one run"
    return f"{_f(figure['min'], 2)}–{_f(figure['max'], 2)} over {runs} runs"


def repetitions(r: dict[str, Any]) -> int:
    """How many repetitions fed the targets of the results ``r``."""
    return len(next(iter(r["targets"].values()))["values"])


def _medians(r: dict[str, Any]) -> str:
    runs = repetitions(r)
    return f" (medians of {runs} repetitions)" if runs > 1 else ""


def target_table(r: dict[str, Any]) -> list[str]:
    """The ``## Targets`` section: each target's median and spread over the repetitions,
    whether it is met, and for each one missed the figures of the run that say why."""
    figures = r["targets"]
    runs = repetitions(r)
    lines = [
        "## Targets",
        "",
        (
            f"Each figure is measured in {runs} repetition{'s' if runs != 1 else ''} of this run "
            "(`--repeat`), each a ratio against a baseline measured in the same repetition. A "
            "target is met when the median meets it, or every repetition where it says so."
        ),
        "",
        "| figure | median | spread | target | met |",
        "|---|---|---|---|---|",
    ]
    missed = []
    for target in targets.TARGETS:
        figure = figures[target.key]
        lines.append(
            f"| `{target.key}` | {_f(figure['median'], 2)} | {_spread(figure)} | "
            f"{target.wording} | {'yes' if figure['met'] else 'NO'} |"
        )
        if not figure["met"]:
            missed.append(f"- `{target.key}` is not met: {target.why(r)}.")
    if missed:
        lines += [
            "",
            "What keeps each missed target from being met, in this run's figures:",
            "",
            *missed,
        ]
    return lines


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Benchmarks",
        "",
        (
            f"Measured {r['when']} on {m['cpus']} CPUs / {m['memory_gib']} GiB, "
            f"Python {m['python']}{' (quick run)' if r['quick'] else ''}; "
            f"the whole run took {r['duration_seconds']} s."
        ),
        "Every target is a ratio against a baseline measured in the same run, because these",
        "machines are shared and noisy. Reproduce with `uv run python -m bench` (`--json FILE` for",
        "the figures as JSON; `--quick` is a smoke run that leaves this file alone unless given",
        "`--write-docs`). The scale-out runs apart, on as many cores as the machine has:",
        "`uv run python -m bench.scale --workers 1,2,4,8,12` (figures for 2 cores in",
        "[reliability](reliability.md#scale-out); not yet measured on a 16-core machine).",
        "",
        *target_table(r),
    ]

    p = r["persist"]
    lines += [
        "",
        "## Persisting a call",
        "",
        f"{p['calls']} standard simulated calls, {p['rows']:,} rows ({_f(p['rows_per_call'], 0)}",
        "rows per call), written into freshly truncated tables by each path. The real path, the",
        "binary ceiling and the naive ORM, which the targets read, are measured in every",
        f"repetition{_medians(r)}; the other paths once:",
        "",
        "| path | calls/s | rows/s |",
        "|---|---|---|",
    ]
    for name, v in p["paths"].items():
        lines.append(f"| {name} | {_f(v['calls_per_s'])} | {_f(v['rows_per_s'], 0)} |")
    lines += [
        "",
        "The real path is what a worker runs per call: build the rows from the validated payload,",
        "upsert the `calls` row, binary COPY for the big tables and one pipeline of prepared",
        "INSERTs for the small ones, commit. Multi-row INSERT and executemany are the same",
        "transaction shape with another way of sending the children; COPY wins. The targets are",
        "against the binary ceiling, the format the real path writes. Batching several calls per",
        f"transaction reaches {_f(p['batched_vs_copy_ratio'], 2)} of that ceiling: the gap is",
        "per-call work (building rows, the upsert, a dozen statements), not the commit.",
    ]

    h = r["handoff"]
    lines += [
        "",
        "## Hand-off: `finalize_and_write`",
        "",
        f"{h['samples']} calls of about {_f(h['payload_bytes_mean'] / 1024, 0)} KiB each, finalized",
        "one after another on one event loop against the local Redis (the JSON encoding and",
        f"publishing run in a worker thread, so the event loop never waits){_medians(r)}:",
        "",
        f"- p50 {_f(h['finalize_p50_ms'], 2)} ms, p99 {_f(h['finalize_p99_ms'], 2)} ms",
        "",
        "Publishing one payload (median ms) with and without Celery's zlib compression:",
        "",
        "| payload | plain | zlib |",
        "|---|---|---|",
    ]
    for size, row in r["compression"].items():
        lines.append(f"| {size} | {_f(row['plain'], 2)} | {_f(row['zlib'], 2)} |")

    lines += [
        "",
        "## End to end",
        "",
        "Throughput is a burst of calls handed off as fast as possible; latency (hand-off to",
        "`persisted_at`) is measured at a steady half of that throughput, so it shows the",
        "pipeline rather than a queue. Each worker process takes one task at a time. The calls",
        "are of the standard simulated shape, as in the persist paths above but other draws of",
        "it, so the target weighs the burst's calls/s against the COPY ceiling's by their rows",
        f"per call{_medians(r)}:",
        "",
        "| workers | burst calls/s | rows per call | latency at | p50 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in r["end_to_end"].items():
        lines.append(
            f"| {name.split('_')[0]} | {_f(v['calls_per_s'])} | {_f(v['rows_per_call'], 0)} | "
            f"{_f(v['steady_calls_per_s'])} calls/s | {_f(v['e2e_p50_ms'])} ms | "
            f"{_f(v['e2e_p99_ms'])} ms |"
        )

    mem = r["memory"]
    lines += [
        "",
        "## Worker memory",
        "",
        f"RSS of one pool process over {mem['tasks']:,} finalize tasks (small calls):",
        "",
        "| tasks | RSS MiB |",
        "|---|---|",
        *(f"| {s['tasks']:,} | {s['rss_mib']} |" for s in mem["rss_mib"]),
        "",
        (
            f"Growth from the first to the last sample: {_f(mem['rss_growth_mib'])} MiB "
            f"(ratio {_f(mem['rss_growth_ratio'], 2)})."
        ),
    ]
    for section in optional_sections():
        if section.key in r:
            lines += ["", *section.markdown(r[section.key])]
    return "\n".join(lines) + "\n"


def replace_section(document: str, lines: list[str]) -> str:
    """``document`` with the section headed ``lines[0]`` (a ``## `` heading, up to the next
    one) replaced by ``lines``, or ``lines`` appended when it has no such section."""
    heading = lines[0]
    section = "\n".join(lines).rstrip("\n") + "\n"
    kept = document.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(kept) if line.rstrip("\n") == heading)
    except StopIteration:
        return document.rstrip("\n") + "\n\n" + section
    end = next(
        (i for i in range(start + 1, len(kept)) if kept[i].startswith("## ")),
        len(kept),
    )
    after = "".join(kept[end:])
    return "".join(kept[:start]) + section + ("\n" + after if after else "")


def write_section(path: Path, lines: list[str]) -> None:
    """Replace (or add) one section of the document at ``path``, leaving the rest as it is."""
    path.write_text(replace_section(path.read_text() if path.exists() else "", lines))
