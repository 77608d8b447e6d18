"""The unit tier: pure tests, with no server and no process of ours (``uv run pytest tests/unit``
runs in seconds). Running ``check-jsonschema`` on docker-compose.yml is the one subprocess here:
a third-party validator reading a file, which needs no server."""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.settings import get_settings


@pytest.fixture
def celery_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``worker.celery_app`` with every task module imported, configured for servers that are
    never contacted (the app is only inspected)."""
    monkeypatch.setenv("CALLSTORE_DATABASE_URL", "postgresql://postgres@/callstore?host=/nowhere")
    monkeypatch.setenv("CALLSTORE_BROKER_URL", "redis+socket:///nowhere/redis.socket")
    get_settings.cache_clear()
    try:
        module = importlib.import_module("worker.celery_app")
        module.app.loader.import_default_modules()
        yield module
    finally:
        get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _no_spool_left_behind(tmp_path: Path) -> Iterator[None]:
    """A spool a test leaves (a spooled call, an orphaned journal) keeps the recorder's
    background drainer trying a broker that does not exist, every few seconds, for the rest of
    the session: removing it lets the drainer stop, and keeps its retries (redis-py draws its
    backoff jitter from ``random``) out of later hypothesis tests."""
    yield
    shutil.rmtree(tmp_path / "spool", ignore_errors=True)


def pytest_itemcollected(item: pytest.Item) -> None:
    """Only items under this directory reach this hook (``node.ihook``), so the tier is where
    a test lives, never a marker someone has to remember."""
    item.add_marker(pytest.mark.unit)
