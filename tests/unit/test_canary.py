"""The canary's schedule and its send time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from beat_schedule import BEAT_SCHEDULE
from worker.monitoring.canary import CANARY_TASK, sent_at_from


def test_the_canary_runs_every_minute_through_the_calls_queue() -> None:
    (entry,) = [e for e in BEAT_SCHEDULE.values() if e["task"] == CANARY_TASK]
    assert entry["options"]["queue"] == "calls"
    assert 0 < entry["options"]["expires"] < entry["schedule"] <= 60


def test_the_canary_send_time_falls_back_to_the_execution_time() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    sent = now - timedelta(seconds=3)
    assert sent_at_from(sent.isoformat(), default=now) == sent
    for unusable in (None, "", "yesterday", "2026-11-23T11:59:57", 17):
        assert sent_at_from(unusable, default=now) == now
