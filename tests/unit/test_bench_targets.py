"""The benchmark's targets: the spread of repeated figures, each repetition's ratio taken from
its own baseline, the met / not-met decision, and the Targets table with the measured reason
for each target missed."""

from __future__ import annotations

from typing import Any

import pytest

from bench import report, targets
from bench.__main__ import merge_repetitions
from bench.persist import CEILING, ORM_PATH, REAL_PATH
from bench.spread import spread


def _target(key: str) -> targets.Target:
    return next(t for t in targets.TARGETS if t.key == key)


@pytest.mark.parametrize(
    ("key", "median", "met"),
    [
        ("persist_vs_copy_ratio", 0.8, True),
        ("persist_vs_copy_ratio", 0.79, False),
        ("worker_vs_postgres_cpu_ratio", 0.5, True),
        ("worker_vs_postgres_cpu_ratio", 0.51, False),
        ("e2e_p99_half_capacity_ms", 50.0, True),
        ("e2e_p99_half_capacity_ms", 50.1, False),
    ],
)
def test_a_target_is_judged_on_the_median_bound_included(
    key: str, median: float, met: bool
) -> None:
    # The worst repetition misses every bound, the median alone decides.
    figure = spread([median, median, 1000.0 if _target(key).at_most else 0.0])
    assert _target(key).met(figure) is met


def test_a_target_that_asks_for_stability_must_hold_in_every_repetition() -> None:
    finalize = _target("finalize_p99_ms")
    assert finalize.met(spread([2.0, 3.0, 5.0]))
    assert not finalize.met(spread([2.0, 3.0, 5.1]))


def test_the_five_targets_and_the_orm_one_are_there_with_their_bounds() -> None:
    assert {t.key: t.wording.split(" ")[:2] for t in targets.TARGETS} == {
        "worker_vs_postgres_cpu_ratio": ["≤", "0.5"],
        "e2e_2_workers_vs_copy_ratio": ["≥", "0.6"],
        "persist_vs_copy_ratio": ["≥", "0.8"],
        "finalize_p99_ms": ["≤", "5"],
        "e2e_p99_half_capacity_ms": ["≤", "50"],
        "persist_vs_orm_ratio": ["≥", "4"],
    }


def repetition(
    *,
    real: float = 90.0,
    ceiling: float = 100.0,
    orm: float = 4.0,
    finalize_p99: float = 4.0,
    two_workers: float = 70.0,
    e2e_p99: float = 30.0,
    worker_ms: float = 2.0,
    postgres_ms: float = 8.0,
    e2e_rows_per_call: float = 800.0,
) -> dict[str, Any]:
    """The sections of one repetition, as far as the targets and their reasons read them."""
    paths = {
        REAL_PATH: {"calls_per_s": real, "rows_per_s": real * 800},
        CEILING: {"calls_per_s": ceiling, "rows_per_s": ceiling * 800},
        ORM_PATH: {"calls_per_s": orm, "rows_per_s": orm * 800},
    }
    return {
        "persist": {
            "calls": 150,
            "rows": 150 * 800,
            "rows_per_call": 800.0,
            "paths": paths,
            "persist_vs_copy_ratio": real / ceiling,
            "persist_vs_orm_ratio": real / orm,
        },
        "handoff": {
            "payload_bytes_mean": 100 * 1024,
            "finalize_p50_ms": 2.5,
            "finalize_p99_ms": finalize_p99,
            "raw_push_p50_ms": 1.5,
            "raw_push_p99_ms": 7.25,
        },
        "end_to_end": {
            f"{n}_worker": {
                "calls_per_s": two_workers * n / 2,
                "rows_per_call": e2e_rows_per_call,
                "rows_per_s": two_workers * n / 2 * e2e_rows_per_call,
                "steady_calls_per_s": two_workers * n / 4,
                "e2e_p50_ms": 12.0,
                "e2e_p99_ms": e2e_p99,
            }
            for n in (1, 2)
        },
        "anatomy": {
            "worker_vs_postgres": worker_ms / postgres_ms,
            "calls_per_s": 20.0,
            "cpu_ms_per_call": {
                "main": worker_ms / 4,
                "pool": worker_ms * 3 / 4,
                "worker": worker_ms,
                "postgres": postgres_ms,
            },
            "stages": {
                "copy": {"main": 0.0, "pool": worker_ms / 2},
                "validation": {"main": 0.0, "pool": worker_ms / 4},
                "events": {"main": worker_ms / 4, "pool": 0.0},
            },
        },
    }


def results_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"machine": {"cpus": 2}, **merge_repetitions(runs), "targets": targets.evaluate(runs)}


def rows_of(lines: list[str]) -> dict[str, str]:
    """The table's rows by target key."""
    return {line.split(" | ")[0].strip("| `"): line for line in lines if line.startswith("| `")}


def test_each_repetition_s_ratio_is_taken_from_its_own_baseline() -> None:
    # A slow repetition (the machine busy) slows the ceiling and the workers alike: each ratio
    # is 0.7, which a ratio of medians (70 / 50) would not show.
    runs = [
        repetition(two_workers=70.0, ceiling=100.0),
        repetition(two_workers=35.0, ceiling=50.0),
        repetition(two_workers=14.0, ceiling=20.0),
    ]
    figure = targets.evaluate(runs)["e2e_2_workers_vs_copy_ratio"]
    assert figure["values"] == pytest.approx([0.7, 0.7, 0.7])
    assert figure["met"]


def test_end_to_end_calls_are_weighed_against_the_ceiling_s_by_their_rows() -> None:
    # Half as many rows per call at the same calls/s is half the throughput of the ceiling's.
    figure = targets.evaluate(
        [repetition(two_workers=70.0, ceiling=100.0, e2e_rows_per_call=400.0)]
    )
    assert figure["e2e_2_workers_vs_copy_ratio"]["values"] == pytest.approx([0.35])


def test_every_target_is_met_by_a_repetition_within_bounds() -> None:
    figures = targets.evaluate([repetition(), repetition(), repetition()])
    assert {key: figure["met"] for key, figure in figures.items()} == dict.fromkeys(
        (t.key for t in targets.TARGETS), True
    )


def test_the_table_gives_each_target_s_median_spread_and_verdict() -> None:
    runs = [
        repetition(worker_ms=2.0, finalize_p99=4.0),
        repetition(worker_ms=3.0, finalize_p99=6.0),
        repetition(worker_ms=2.5, finalize_p99=4.5),
    ]
    lines = report.target_table(results_of(runs))
    rows = rows_of(lines)
    assert list(rows) == [t.key for t in targets.TARGETS]
    assert rows["worker_vs_postgres_cpu_ratio"].split(" | ")[1:3] == [
        "0.31",
        "0.25\u20130.38 over 3 runs",
    ]
    assert rows["worker_vs_postgres_cpu_ratio"].endswith("| yes |")
    # The median (4.5 ms) is within 5 ms, but one repetition is not: not stable, not met.
    assert rows["finalize_p99_ms"].split(" | ")[1] == "4.50"
    assert rows["finalize_p99_ms"].endswith("| NO |")
    assert lines[0] == "## Targets"


def test_a_target_missed_comes_with_the_figures_of_the_run_that_explain_it() -> None:
    runs = [
        repetition(worker_ms=20.0, postgres_ms=8.0, real=50.0, ceiling=125.0, two_workers=100.0)
    ]
    lines = report.target_table(results_of(runs))
    missed = [line for line in lines if line.startswith("- ")]
    assert [line.split("`")[1] for line in missed] == [
        "worker_vs_postgres_cpu_ratio",
        "persist_vs_copy_ratio",
    ]
    worker, persist = missed
    assert "20.00 ms of CPU per call" in worker
    assert "against PostgreSQL's 8.00 ms" in worker
    assert "binary COPY (big tables) 10.00 ms" in worker  # the heaviest stage first
    assert "20.00 ms on the real path against 8.00 ms" in persist
    assert rows_of(lines)["persist_vs_copy_ratio"].split(" | ")[1:3] == ["0.40", "one run"]


def test_a_throughput_missed_names_both_rates_in_calls_and_rows() -> None:
    runs = [repetition(two_workers=40.0, ceiling=100.0, e2e_rows_per_call=700.0)]
    (missed,) = [line for line in report.target_table(results_of(runs)) if line.startswith("- ")]
    assert missed.startswith("- `e2e_2_workers_vs_copy_ratio` is not met: ")
    assert "2 workers stored 40.0 calls/s of 700 rows (28,000 rows/s" in missed
    assert "against a ceiling of 100.0 calls/s of 800 rows (80,000 rows/s)" in missed


def test_a_run_that_meets_every_target_has_no_reasons_to_give() -> None:
    lines = report.target_table(results_of([repetition()]))
    assert not [line for line in lines if line.startswith("- ")]
    assert "What keeps" not in "\n".join(lines)


def test_the_targets_open_the_document_and_the_other_sections_follow_as_before() -> None:
    results = results_of([repetition(), repetition()])
    del results["anatomy"]  # its section is rendered by bench.anatomy, apart
    results["persist"]["batched_vs_copy_ratio"] = 0.5
    results["handoff"]["samples"] = 590
    results.update(
        when="2026-11-23T15:49:26+00:00",
        quick=False,
        duration_seconds=1300.0,
        machine={"cpus": 2, "memory_gib": 23.5, "python": "3.11.7"},
        compression={"189 KiB": {"plain": 3.4, "zlib": 4.0}},
        memory={
            "tasks": 10_000,
            "rss_mib": [{"tasks": 1000, "rss_mib": 116.1}],
            "rss_growth_mib": 0.0,
            "rss_growth_ratio": 1.0,
        },
    )
    document = report.markdown(results)
    headings = [line for line in document.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Targets",
        "## Persisting a call",
        "## Hand-off: `finalize_and_write`",
        "## End to end",
        "## Worker memory",
    ]
    assert document.startswith("# Benchmarks\n\nMeasured 2026-11-23T15:49:26+00:00 on 2 CPUs")
    assert "measured in 2 repetitions of this run" in document
    assert "| 2 | 70.0 | 800 | 35.0 calls/s | 12.0 ms | 30.0 ms |" in document


def test_a_hand_off_missed_names_what_redis_alone_costs_in_the_same_run() -> None:
    runs = [repetition(finalize_p99=9.0)]
    (missed,) = [line for line in report.target_table(results_of(runs)) if line.startswith("- ")]
    assert missed.startswith("- `finalize_p99_ms` is not met: ")
    assert "p99 of each run: 9.00 ms (1 of 1 over 5 ms)" in missed
    assert "a raw LPUSH of the same bytes to the same Redis" in missed
    assert "p50 1.50 ms and p99 7.25 ms in the same run" in missed
