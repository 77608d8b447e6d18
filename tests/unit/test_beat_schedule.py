"""``beat_schedule.py`` against the tasks the Celery app really registers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import beat_schedule


def _seconds(value: Any) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    run_every = getattr(value, "run_every", None)
    assert isinstance(run_every, timedelta), f"no fixed period in {value!r}"
    return run_every.total_seconds()


def test_the_schedule_has_the_maintenance_jobs() -> None:
    tasks = {entry["task"] for entry in beat_schedule.BEAT_SCHEDULE.values()}
    assert {
        "maintenance.rotate_partitions",
        "maintenance.enforce_retention",
        "maintenance.flush_spool",
    } <= tasks


@pytest.mark.parametrize("name", sorted(beat_schedule.BEAT_SCHEDULE))
def test_every_entry_names_a_registered_task_on_a_real_queue(name: str, celery_app: Any) -> None:
    entry = beat_schedule.BEAT_SCHEDULE[name]
    assert entry["task"] in celery_app.app.tasks, f"{name}: {entry['task']} is not registered"
    options = entry["options"]
    assert options["queue"] in celery_app.QUEUES
    routed = celery_app.app.amqp.router.route({}, entry["task"])["queue"].name
    assert routed == options["queue"], (
        f"{name}: routed to {routed}, scheduled on {options['queue']}"
    )
    period = _seconds(entry["schedule"])
    assert 0 < options["expires"] < period, f"{name}: expires must be shorter than the period"


def test_the_app_uses_this_schedule(celery_app: Any) -> None:
    assert celery_app.app.conf.beat_schedule == beat_schedule.BEAT_SCHEDULE
