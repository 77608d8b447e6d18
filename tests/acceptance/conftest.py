"""The acceptance tier: tests that start processes of ours (Celery worker, beat and Flower, the
``callstore`` and ``alembic`` console scripts, ``python -m ...``, the demo) against the real
servers, and watch them as an operator would."""

from __future__ import annotations

import pytest


def pytest_itemcollected(item: pytest.Item) -> None:
    """Only items under this directory reach this hook (``node.ihook``), so the tier is where
    a test lives, never a marker someone has to remember."""
    item.add_marker(pytest.mark.acceptance)
