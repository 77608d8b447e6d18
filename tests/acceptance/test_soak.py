"""The short soak: every fault once, on its own embedded stack, and nothing lost or doubled; the
calls of runtime processes killed mid-call are stored as interrupted with what they recorded."""

from __future__ import annotations

from bench.soak import SoakConfig, run


def test_short_soak_loses_and_duplicates_nothing() -> None:
    result = run(SoakConfig.short(), log=lambda _line: None)
    assert result.lost == 0
    assert result.duplicated == 0
    assert result.refused_by_recorder == 0
    assert result.persisted == result.valid
    assert result.dead_lettered == result.malformed and result.wrongly_dead_lettered == 0
    assert result.poison_dead_lettered and result.revision_conflicts == 0
    assert {f.name for f in result.faults} == {
        "worker SIGKILL", "postgres restart", "postgres read-only", "maintenance run",
        "poison message", "redis restart",
    }  # fmt: skip
    assert result.worker_kills >= 1 and result.duplicates_sent > 0
    assert result.concurrent_duplicates_sent > 0
    assert result.runtime_kills >= 1 and result.crashed_calls > 0
    assert result.interrupted_recovered == result.crashed_calls
    assert result.interrupted_wrong == 0
