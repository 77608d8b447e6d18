"""The migration's beat entry: a registered task, on the migration queue, expiring in time."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

import beat_schedule
from worker.settings import get_settings


@pytest.fixture
def celery_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("CALLSTORE_DATABASE_URL", "postgresql://postgres@/callstore?host=/nowhere")
    monkeypatch.setenv("CALLSTORE_BROKER_URL", "redis+socket:///nowhere/redis.socket")
    get_settings.cache_clear()
    try:
        module = importlib.import_module("worker.celery_app")
        module.app.loader.import_default_modules()
        yield module
    finally:
        get_settings.cache_clear()


def test_migration_batches_run_every_30_seconds_on_their_queue(celery_app: Any) -> None:
    entry = beat_schedule.BEAT_SCHEDULE["migration-run-batch"]
    assert entry["task"] in celery_app.app.tasks
    assert celery_app.app.amqp.router.route({}, entry["task"])["queue"].name == "migration"
    assert entry["options"]["queue"] == "migration"
    assert 0 < entry["options"]["expires"] < entry["schedule"] == 30.0
