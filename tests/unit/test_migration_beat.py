"""The migration's beat entry: a registered task, on the migration queue, expiring in time."""

from __future__ import annotations

from typing import Any

import beat_schedule


def test_migration_batches_run_every_30_seconds_on_their_queue(celery_app: Any) -> None:
    entry = beat_schedule.BEAT_SCHEDULE["migration-run-batch"]
    assert entry["task"] in celery_app.app.tasks
    assert celery_app.app.amqp.router.route({}, entry["task"])["queue"].name == "migration"
    assert entry["options"]["queue"] == "migration"
    assert 0 < entry["options"]["expires"] < entry["schedule"] == 30.0
