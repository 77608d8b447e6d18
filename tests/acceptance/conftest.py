"""The acceptance tier: tests that start processes of ours (Celery worker, beat and Flower, the
``callstore`` and ``alembic`` console scripts, ``python -m ...``, the demo) against the real
servers, and watch them as an operator would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import WorkerProcess, start_worker
from worker.settings import Settings


def pytest_itemcollected(item: pytest.Item) -> None:
    """Only items under this directory reach this hook (``node.ihook``), so the tier is where
    a test lives, never a marker someone has to remember."""
    item.add_marker(pytest.mark.acceptance)


@pytest.fixture(scope="module")
def module_worker_settings(module_settings: Settings) -> Settings:
    """The settings of ``module_worker``; a module overrides this fixture to change them."""
    return module_settings


@pytest.fixture(scope="module")
def module_worker(
    module_worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One ``calls`` worker for all the tests of a module (on ``module_database``): starting a
    worker per test would cost more than the tests."""
    process = start_worker(module_worker_settings, tmp_path_factory.mktemp("worker-logs"))
    yield process
    process.stop()
