"""The performance targets of ``python -m bench``: what each one reads from a repetition, its
bound, whether the run meets it, and the figures that say why not.

The machines are shared and noisy, so every figure a target reads is measured in several
repetitions of one run (``--repeat``), each a ratio against a baseline measured in the same
repetition; a target is judged on the median of the repetitions, except where the target asks
for stability, where every repetition must meet it. Everything here is pure: it reads the
results dict ``python -m bench`` builds and returns figures and text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench import stages
from bench.persist import BATCHED, CEILING, ORM_PATH, REAL_PATH
from bench.spread import spread

#: The deployment the end-to-end targets are measured on.
E2E_WORKERS = "2_worker"
#: ``finalize_and_write``'s bound, which every repetition must keep.
FINALIZE_P99_MS = 5.0


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _top_stages(anatomy: dict[str, Any], count: int = 3) -> str:
    totals = [
        (key, by_role["main"] + by_role["pool"]) for key, by_role in anatomy["stages"].items()
    ]
    heaviest = sorted(totals, key=lambda item: -item[1])[:count]
    return ", ".join(f"{stages.TITLES.get(key, key)} {_f(ms, 2)} ms" for key, ms in heaviest)


def _why_worker_cpu(r: dict[str, Any]) -> str:
    a = r["anatomy"]
    cpu = a["cpu_ms_per_call"]
    return (
        f"the worker spends {_f(cpu['worker'], 2)} ms of CPU per call (main process "
        f"{_f(cpu['main'], 2)}, pool {_f(cpu['pool'], 2)}) against PostgreSQL's "
        f"{_f(cpu['postgres'], 2)} ms; its heaviest stages: {_top_stages(a)}"
    )


def _why_e2e_throughput(r: dict[str, Any]) -> str:
    e2e = r["end_to_end"]
    two = e2e[E2E_WORKERS]
    cpu = r["anatomy"]["cpu_ms_per_call"]
    p = r["persist"]
    ceiling = p["paths"][CEILING]
    return (
        f"2 workers stored {_f(two['calls_per_s'])} calls/s of {_f(two['rows_per_call'], 0)} "
        f"rows ({_f(two['rows_per_s'], 0)} rows/s; 1 worker {_f(e2e['1_worker']['calls_per_s'])} "
        f"calls/s) against a ceiling of {_f(ceiling['calls_per_s'])} calls/s of "
        f"{_f(p['rows_per_call'], 0)} rows ({_f(ceiling['rows_per_s'], 0)} rows/s), on "
        f"{r['machine']['cpus']} CPUs that also run the producer, PostgreSQL and Redis; a call "
        f"costs {_f(cpu['worker'], 2)} ms of worker CPU and {_f(cpu['postgres'], 2)} ms of "
        "PostgreSQL's"
    )


def _why_persist_vs_copy(r: dict[str, Any]) -> str:
    paths = r["persist"]["paths"]
    real = paths[REAL_PATH]["calls_per_s"]
    ceiling = paths[CEILING]["calls_per_s"]
    why = (
        f"a call takes {_f(1000 / real, 2)} ms on the real path against "
        f"{_f(1000 / ceiling, 2)} ms in the ceiling's one COPY per table"
    )
    if BATCHED in paths:
        why += (
            f"; batching 10 calls per transaction reaches "
            f"{_f(paths[BATCHED]['calls_per_s'] / ceiling, 2)} of the ceiling"
        )
    return why


def _why_persist_vs_orm(r: dict[str, Any]) -> str:
    paths = r["persist"]["paths"]
    return (
        f"the real path stores {_f(paths[REAL_PATH]['calls_per_s'])} calls/s, the naive ORM "
        f"{_f(paths[ORM_PATH]['calls_per_s'])}"
    )


def _why_finalize(r: dict[str, Any]) -> str:
    h = r["handoff"]
    values = r["targets"]["finalize_p99_ms"]["values"]
    over = sum(v > FINALIZE_P99_MS for v in values)
    p50 = h["finalize_p50_ms"]
    return (
        f"p99 of each run: {', '.join(_f(v, 2) + ' ms' for v in values)} ({over} of "
        f"{len(values)} over {FINALIZE_P99_MS:g} ms) for calls of "
        f"{_f(h['payload_bytes_mean'] / 1024, 0)} KiB; the p50 is {_f(p50, 2)} ms"
        + (", so the tail misses, not the typical call" if p50 <= FINALIZE_P99_MS else "")
        + _floor(h)
    )


def _floor(h: dict[str, Any]) -> str:
    """The same run's raw ``LPUSH`` of the same bytes: what Redis alone costs a hand-off."""
    if "raw_push_p99_ms" not in h:
        return ""
    return (
        f"; a raw LPUSH of the same bytes to the same Redis (append-only file fsynced on every "
        f"write), with nothing else of the hand-off, takes p50 {_f(h['raw_push_p50_ms'], 2)} ms "
        f"and p99 {_f(h['raw_push_p99_ms'], 2)} ms in the same run"
    )


def _why_e2e_latency(r: dict[str, Any]) -> str:
    e2e = r["end_to_end"]
    v = e2e[E2E_WORKERS]
    why = (
        f"at {_f(v['steady_calls_per_s'])} calls/s (half of the {_f(v['calls_per_s'])} calls/s "
        f"burst) with 2 workers, p50 {_f(v['e2e_p50_ms'])} ms and p99 {_f(v['e2e_p99_ms'])} ms"
    )
    if "1_worker" in e2e:
        one = e2e["1_worker"]
        why += (
            f" (1 worker at {_f(one['steady_calls_per_s'])} calls/s: p50 "
            f"{_f(one['e2e_p50_ms'])} ms, p99 {_f(one['e2e_p99_ms'])} ms)"
        )
    return why


@dataclass(frozen=True)
class Target:
    key: str
    #: What the bound is, in words, after the comparison sign.
    text: str
    bound: float
    #: True: the figure must stay at or under the bound; False: at or over it.
    at_most: bool
    #: The figure, read from one repetition's results.
    measure: Callable[[dict[str, Any]], float]
    #: The figures of the run that explain a miss, read from the merged results.
    why: Callable[[dict[str, Any]], str]
    #: True: every repetition must meet the bound (a target that asks for stability).
    every_run: bool = False

    def holds(self, value: float) -> bool:
        return value <= self.bound if self.at_most else value >= self.bound

    def met(self, figure: dict[str, Any]) -> bool:
        """Whether ``figure`` (a :func:`spread`) meets the target."""
        if self.every_run:
            return all(self.holds(v) for v in figure["values"])
        return self.holds(figure["median"])

    @property
    def wording(self) -> str:
        sign = "≤" if self.at_most else "≥"
        return f"{sign} {self.bound:g} {self.text}".rstrip()


def _e2e_vs_ceiling(run: dict[str, Any]) -> float:
    """2 workers' end-to-end throughput against the ceiling's, both in rows/s: the calls/s
    of calls of the same size, as the two sections draw different calls of the standard
    shape (the ceiling writes the same calls in each repetition)."""
    e2e = run["end_to_end"][E2E_WORKERS]["rows_per_s"]
    return float(e2e / run["persist"]["paths"][CEILING]["rows_per_s"])


TARGETS: tuple[Target, ...] = (
    Target(
        "worker_vs_postgres_cpu_ratio",
        "× PostgreSQL's CPU per call (standard call)",
        0.5,
        at_most=True,
        measure=lambda run: float(run["anatomy"]["worker_vs_postgres"]),
        why=_why_worker_cpu,
    ),
    Target(
        "e2e_2_workers_vs_copy_ratio",
        "of the binary COPY ceiling, end to end with 2 workers (calls/s, weighed in rows)",
        0.6,
        at_most=False,
        measure=_e2e_vs_ceiling,
        why=_why_e2e_throughput,
    ),
    Target(
        "persist_vs_copy_ratio",
        "of the binary COPY ceiling",
        0.8,
        at_most=False,
        measure=lambda run: float(run["persist"]["persist_vs_copy_ratio"]),
        why=_why_persist_vs_copy,
    ),
    Target(
        "finalize_p99_ms",
        "ms on a local broker, in every run",
        FINALIZE_P99_MS,
        at_most=True,
        measure=lambda run: float(run["handoff"]["finalize_p99_ms"]),
        why=_why_finalize,
        every_run=True,
    ),
    Target(
        "e2e_p99_half_capacity_ms",
        "ms end to end at half of the 2 workers' capacity",
        50,
        at_most=True,
        measure=lambda run: float(run["end_to_end"][E2E_WORKERS]["e2e_p99_ms"]),
        why=_why_e2e_latency,
    ),
    Target(
        "persist_vs_orm_ratio",
        "times the naive ORM path",
        4,
        at_most=False,
        measure=lambda run: float(run["persist"]["persist_vs_orm_ratio"]),
        why=_why_persist_vs_orm,
    ),
)


def evaluate(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each target's spread over ``runs`` (one results dict per repetition, holding the
    sections the targets read), with whether it is met."""
    figures = {}
    for target in TARGETS:
        figure = spread([target.measure(run) for run in runs])
        figure["met"] = target.met(figure)
        figures[target.key] = figure
    return figures
