"""The consistency benchmark runs end to end on tiny sizes, and its section renders."""

from __future__ import annotations

from pathlib import Path

from bench import consistency

TINY = consistency.Sizes(calls=60, templates=20, damaged=4, azure_calls=30, differing=2)


def test_the_benchmark_finds_exactly_what_it_damaged(tmp_path: Path) -> None:
    results = consistency.run(sizes=TINY, workdir=tmp_path)
    store, azure = results["store"], results["azure"]
    assert store["found_exactly_the_damaged"]
    assert store["summaries_examined"] == {"full": 60, "incremental": 4}
    assert set(store["per_check_ms"]) == set(store["checks"])
    assert azure["bisection_found_exactly_the_altered"]
    assert azure["incremental_found_exactly_the_changed"]
    assert {way["statements"] for way in azure["clean"].values()} == {1}
    assert all(way["differing"] == 2 for way in azure["differing"].values())
    assert azure["differing"]["ranges"]["statements"] > 1
    lines = consistency.markdown(results)
    assert lines[0] == "## Consistency check"
    assert sum(line.startswith("| key ranges, bisection |") for line in lines) == 2
