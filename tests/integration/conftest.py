"""The integration tier: tests in this process against the real servers of ``tests/conftest.py``
(embedded PostgreSQL, Redis) and Azurite; nothing of ours runs as a subprocess (typer's
``CliRunner`` runs the CLI in process). ``uv run pytest -m "not acceptance"`` runs it with the
unit tier."""

from __future__ import annotations

import pytest


def pytest_itemcollected(item: pytest.Item) -> None:
    """Only items under this directory reach this hook (``node.ihook``), so the tier is where
    a test lives, never a marker someone has to remember."""
    item.add_marker(pytest.mark.integration)
