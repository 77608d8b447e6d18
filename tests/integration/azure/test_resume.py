"""A batch killed at any point is redone exactly once: nothing lost, nothing twice (a
``callstore migrate azure run`` process SIGKILLed:
``tests/acceptance/azure/test_resume_killed.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest

from tests.azure_fixtures import Migrate, expected_counts, migrated_counts, snapshot
from worker.azure import checkpoints, sources, transforms
from worker.azure.client import AzureStorage
from worker.dev import legacy_data as generate


def _checkpoints(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM migration_checkpoints ORDER BY source").fetchall()


@pytest.mark.usefixtures("legacy_with_bulk")
def test_batch_killed_before_its_commit_is_redone_once(
    migrate: Migrate, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(migrate(max_batches=2, batch_size=100).batches) == 2
    before, positions = snapshot(conn), _checkpoints(conn)

    def killed(*_: Any) -> None:  # the batch's rows are written; its checkpoint is not yet
        raise RuntimeError("killed between the data write and the commit")

    monkeypatch.setattr(checkpoints, "save", killed)
    with pytest.raises(RuntimeError, match="killed between"):
        migrate(max_batches=1, batch_size=100)
    assert snapshot(conn) == before
    assert _checkpoints(conn) == positions
    monkeypatch.undo()

    assert migrate(batch_size=100).caught_up
    assert migrated_counts(conn) == expected_counts()


def test_a_value_postgres_refuses_becomes_a_reject_and_the_rest_migrates(
    legacy: AzureStorage,
    migrate: Migrate,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generate.write_cases(legacy)
    convert = transforms.TRANSFORMS[sources.CUSTOMERS.name]

    def unforeseen(record: Any) -> Any:  # a value the transform let through by mistake
        row = convert(record)
        assert isinstance(row, transforms.CustomerRow)
        if record.partition_key == generate.C_DOTS:
            row = dataclasses.replace(row, segment="gold")
        return row

    monkeypatch.setitem(transforms.TRANSFORMS, sources.CUSTOMERS.name, unforeseen)
    assert migrate().caught_up
    reason = conn.execute(
        "SELECT reason FROM migration_rejects WHERE key = %s", (f"{generate.C_DOTS}/profile",)
    ).fetchone()
    assert reason is not None
    assert reason[0].startswith("PostgreSQL refused it:")
    assert "ck_customers_segment" in reason[0]
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM calls").fetchone() == (11,)
