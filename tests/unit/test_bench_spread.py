"""Figures measured in several repetitions of a benchmark run: their spread, and one dict of a
section measured in each repetition."""

from __future__ import annotations

import pytest

from bench.spread import median_merge, median_run, spread


def test_a_spread_is_the_median_and_range_of_the_repetitions() -> None:
    assert spread([3.0, 1.0, 2.0]) == {
        "values": [3.0, 1.0, 2.0],
        "median": 2.0,
        "min": 1.0,
        "max": 3.0,
    }
    assert spread([1.0, 4.0])["median"] == 2.5
    assert spread([7.0]) == {"values": [7.0], "median": 7.0, "min": 7.0, "max": 7.0}


def test_a_spread_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        spread([])


def test_merging_repetitions_takes_the_median_of_each_number_key_by_key() -> None:
    runs = [
        {"calls": 150, "label": "a", "paths": {"real": {"calls_per_s": 10.0}, "once": {"v": 1.0}}},
        {"calls": 150, "label": "b", "paths": {"real": {"calls_per_s": 30.0}}},
        {"calls": 150, "label": "c", "paths": {"real": {"calls_per_s": 20.0}}},
    ]
    assert median_merge(runs) == {
        "calls": 150,
        "label": "a",
        "paths": {"real": {"calls_per_s": 20.0}, "once": {"v": 1.0}},
    }


def test_an_equal_count_stays_an_integer_over_an_even_number_of_repetitions() -> None:
    merged = median_merge([{"calls": 40, "rate": 1.0}, {"calls": 40, "rate": 2.0}])
    assert merged == {"calls": 40, "rate": 1.5}
    assert isinstance(merged["calls"], int)


def test_the_median_run_is_a_whole_repetition() -> None:
    runs = [{"r": 3.0, "n": "x"}, {"r": 1.0, "n": "y"}, {"r": 2.0, "n": "z"}]
    assert median_run(runs, "r")["n"] == "z"
    assert median_run(runs[:2], "r")["n"] == "y"  # the lower of an even count
