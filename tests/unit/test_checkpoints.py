"""Checkpoints: due at the interval, only for what changed, and never more bytes in all than
``BYTES_RATIO`` times the call."""

from __future__ import annotations

from worker.client.checkpoints import BYTES_RATIO, CheckpointPlan


def _simulate(interval: float, minutes: int, *, bytes_per_second: int = 100) -> CheckpointPlan:
    """A call that grows steadily, ticked every second for ``minutes``."""
    plan = CheckpointPlan(interval, started=0.0)
    for second in range(1, minutes * 60 + 1):
        size = 1024 + bytes_per_second * second
        if plan.due(float(second), size, version=second):
            plan.sent(float(second), size, version=second)
    return plan


def test_a_long_call_costs_a_bounded_multiple_of_itself() -> None:
    plan = _simulate(60, 30)
    final = 1024 + 100 * 30 * 60
    assert plan.sent_bytes <= BYTES_RATIO * final
    every_interval = sum(1024 + 100 * t for t in range(60, 30 * 60 + 1, 60))
    assert every_interval > 15 * final  # what a checkpoint every minute would cost
    assert 5 <= plan.count < 30


def test_a_short_call_is_checkpointed_every_interval() -> None:
    plan = _simulate(60, 4)
    assert plan.count == 4


def test_nothing_new_means_no_checkpoint_and_zero_turns_them_off() -> None:
    plan = CheckpointPlan(60, started=0.0)
    assert plan.due(61, 2000, version=1)
    plan.sent(61, 2000, version=1)
    assert not plan.due(200, 2000, version=1)
    assert not CheckpointPlan(0, started=0.0).due(1e6, 2000, version=5)
