"""Comparing two sides by key range, bisecting only where they differ.

The approach of range-checksum diff tools (pt-table-checksum, data-diff): both sides order their
calls by call SID and give, for each bucket of a key range, the number of calls and one digest
of all of them (md5 over each call's SID and digest, in SID order). Equal buckets are done
with; a bucket that differs is split into ``fanout`` buckets again, until a bucket holds at most
``leaf`` calls, whose per-call digests are then compared. A clean comparison therefore costs
one round of ``fanout`` bucket digests on each side, and ``d`` differing calls cost about
``d * log_fanout(calls / leaf)`` more rounds, each over a smaller range.

Call SIDs are ``CA`` and 32 lowercase hex digits, so a key range is a range of 128-bit
integers, split into equal parts; SIDs are random, so the parts hold about as many calls each.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from worker.consistency.canonical import md5

KEY_SPACE = 16**32
FANOUT = 16
LEAF = 64


def bound(value: int) -> str:
    """The SID at ``value`` in the key space (``CB`` past its end: above every SID)."""
    return f"CA{value:032x}" if value < KEY_SPACE else "CB"


class Side(Protocol):
    def buckets(self, lo: str, hi: str, bounds: Sequence[str]) -> dict[int, tuple[int, str]]:
        """``bucket -> (calls, digest)`` of the calls in ``[lo, hi)``, bucket ``i`` holding
        ``bounds[i-1] <= sid < bounds[i]``; empty buckets absent."""
        ...

    def calls(self, lo: str, hi: str) -> dict[str, str]:
        """``sid -> digest`` of the calls in ``[lo, hi)``."""
        ...


class SortedSide:
    """A side held in memory: digests by SID (the Azure side, read beforehand)."""

    def __init__(self, digests: Mapping[str, str]) -> None:
        self.sids = sorted(digests)
        self.digests = [digests[s] for s in self.sids]

    def _span(self, lo: str, hi: str) -> tuple[int, int]:
        return bisect.bisect_left(self.sids, lo), bisect.bisect_left(self.sids, hi)

    def buckets(self, lo: str, hi: str, bounds: Sequence[str]) -> dict[int, tuple[int, str]]:
        start, end = self._span(lo, hi)
        edges = [start, *(bisect.bisect_left(self.sids, b, start, end) for b in bounds), end]
        found = {}
        for index in range(len(edges) - 1):
            first, last = edges[index], edges[index + 1]
            if last > first:
                text = "".join(
                    sid + digest
                    for sid, digest in zip(
                        self.sids[first:last], self.digests[first:last], strict=True
                    )
                )
                found[index] = (last - first, md5(text))
        return found

    def calls(self, lo: str, hi: str) -> dict[str, str]:
        start, end = self._span(lo, hi)
        return dict(zip(self.sids[start:end], self.digests[start:end], strict=True))


@dataclass
class Diff:
    """Calls only on the left, only on the right, on both but different; and the work done."""

    only_left: list[str] = field(default_factory=list)
    only_right: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    ranges_compared: int = 0
    ranges_differing: int = 0
    rounds: int = 0
    calls_compared: int = 0

    @property
    def clean(self) -> bool:
        return not (self.only_left or self.only_right or self.differing)

    def stats(self) -> dict[str, int]:
        return {
            "ranges_compared": self.ranges_compared,
            "ranges_differing": self.ranges_differing,
            "rounds": self.rounds,
            "calls_compared": self.calls_compared,
        }


def diff(left: Side, right: Side, *, fanout: int = FANOUT, leaf: int = LEAF) -> Diff:
    """Compare ``left`` and ``right`` over the whole key space."""
    result = Diff()
    todo = [(0, KEY_SPACE)]
    while todo:
        lo, hi = todo.pop()
        cuts = [lo + (hi - lo) * i // fanout for i in range(1, fanout)]
        bounds = [bound(c) for c in cuts]
        result.rounds += 1
        ours = left.buckets(bound(lo), bound(hi), bounds)
        theirs = right.buckets(bound(lo), bound(hi), bounds)
        edges = [lo, *cuts, hi]
        for index in range(fanout):
            mine, other = ours.get(index), theirs.get(index)
            if mine is None and other is None:
                continue
            result.ranges_compared += 1
            if mine == other:
                continue
            result.ranges_differing += 1
            sub_lo, sub_hi = edges[index], edges[index + 1]
            biggest = max(mine[0] if mine else 0, other[0] if other else 0)
            if biggest <= leaf or sub_hi - sub_lo <= fanout:
                _compare_calls(
                    result,
                    left.calls(bound(sub_lo), bound(sub_hi)),
                    right.calls(bound(sub_lo), bound(sub_hi)),
                )
            else:
                todo.append((sub_lo, sub_hi))
    result.only_left.sort()
    result.only_right.sort()
    result.differing.sort()
    return result


def _compare_calls(result: Diff, ours: Mapping[str, str], theirs: Mapping[str, str]) -> None:
    result.calls_compared += len(ours.keys() | theirs.keys())
    for sid, digest in ours.items():
        if sid not in theirs:
            result.only_left.append(sid)
        elif theirs[sid] != digest:
            result.differing.append(sid)
    result.only_right.extend(sid for sid in theirs if sid not in ours)
