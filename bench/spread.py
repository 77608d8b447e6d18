"""One figure measured in several repetitions of a run: its spread, and one dict of a section
measured in each. The machines are shared and noisy, so a single measurement says little."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def spread(values: Sequence[float]) -> dict[str, Any]:
    """The median and range of one figure's repetitions, with the values themselves."""
    if not values:
        raise ValueError("a spread needs at least one value")
    return {
        "values": list(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def median_merge(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One dict of ``runs`` (the same section measured in each repetition): each number the
    median of the runs that hold it, dicts merged key by key, anything else the first run's."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(key for run in runs for key in run):
        found = [run[key] for run in runs if key in run]
        if all(isinstance(v, dict) for v in found):
            merged[key] = median_merge(found)
        elif all(_number(v) for v in found) and any(v != found[0] for v in found):
            merged[key] = statistics.median(found)
        else:
            merged[key] = found[0]
    return merged


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def median_run(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median (the lower one of an even count): a measurement
    whose parts add up, unlike a merge of medians."""
    ordered = sorted(runs, key=lambda run: run[key])
    return ordered[(len(ordered) - 1) // 2]
