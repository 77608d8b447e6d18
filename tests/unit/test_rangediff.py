"""The range comparison finds exactly the calls that differ, and looks at little else."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from worker.consistency.rangediff import KEY_SPACE, SortedSide, bound, diff


def _sid(rng: random.Random) -> str:
    return bound(rng.randrange(KEY_SPACE))


def _calls(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    return {_sid(rng): f"{rng.getrandbits(128):032x}" for _ in range(n)}


def test_sid_bounds_order_as_the_key_space() -> None:
    values = [0, 1, 15, 16, KEY_SPACE // 2, KEY_SPACE - 1]
    assert [bound(v) for v in values] == sorted(bound(v) for v in values)
    assert bound(KEY_SPACE - 1) < bound(KEY_SPACE)
    assert len(bound(12345)) == 34


def test_a_clean_comparison_is_one_round_and_no_call_compared() -> None:
    calls = _calls(5000, seed=1)
    result = diff(SortedSide(calls), SortedSide(dict(calls)))
    assert result.clean
    assert (result.rounds, result.calls_compared, result.ranges_differing) == (1, 0, 0)
    assert result.ranges_compared == 16


def test_one_differing_call_is_found_by_bisection() -> None:
    calls = _calls(20_000, seed=2)
    victim = sorted(calls)[12_345]
    changed = {**calls, victim: "0" * 32}
    result = diff(SortedSide(calls), SortedSide(changed))
    assert (result.differing, result.only_left, result.only_right) == ([victim], [], [])
    # 20 000 calls, 16 buckets a round, leaves of at most 64: three rounds, one leaf.
    assert result.rounds == 3
    assert result.calls_compared <= 64


@given(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=2**32),
    st.lists(st.sampled_from(["drop", "add", "change"]), max_size=12),
)
def test_finds_exactly_the_differences(n: int, seed: int, faults: list[str]) -> None:
    calls = _calls(n, seed)
    other = dict(calls)
    rng = random.Random(seed + 1)
    expected: dict[str, set[str]] = {"left": set(), "right": set(), "differing": set()}
    for fault in faults:
        shared = sorted(set(other) & set(calls))
        if fault == "add" or not shared:
            added = _sid(rng)
            if added not in calls:
                other[added] = "f" * 32
                expected["right"].add(added)
            continue
        sid = rng.choice(shared)
        if fault == "drop":
            del other[sid]
            expected["left"].add(sid)
            expected["differing"].discard(sid)
        else:
            other[sid] = "e" * 32
            expected["differing"].add(sid)
    result = diff(SortedSide(calls), SortedSide(other), fanout=4, leaf=3)
    assert set(result.only_left) == expected["left"]
    assert set(result.only_right) == expected["right"]
    assert set(result.differing) == expected["differing"]
