"""Azurite for the migration tests: started once per session, in memory, on free ports.

``node_modules`` is installed from ``package-lock.json`` (``npm ci``) when missing. Each test
gets an empty storage account: the session's Azurite is wiped before the test. A pytest plugin
(``pytest_plugins`` in ``tests/conftest.py``), so that the integration and the acceptance tiers
both see these fixtures.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from azure.core.exceptions import ResourceNotFoundError
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import Engine

from tests.conftest import Database
from tests.factories import make_settings
from worker.azure import sources
from worker.azure.batch import RunResult, run_batches
from worker.azure.client import AzureStorage, RetryOptions
from worker.db import build_engine
from worker.dev import azurite, stack
from worker.dev import legacy_data as generate
from worker.settings import Settings

#: Give up at once on trouble: the fault tests say how many retries they want.
FAST_RETRY = RetryOptions(total=3, backoff_factor=0.01, backoff_max=0.05, connection_timeout=2)

#: The bulk ``legacy_with_bulk`` adds to the cases: enough calls for several batches.
BULK_CALLS = 40
BULK_SEED = 5


@pytest.fixture(scope="session")
def azurite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[azurite.Azurite]:
    server = azurite.start(log_dir=tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


def _wipe(storage: AzureStorage) -> None:
    for table in list(storage.tables.list_tables()):
        with contextlib.suppress(ResourceNotFoundError):
            storage.tables.delete_table(table.name)
    for container in list(storage.blobs.list_containers()):
        with contextlib.suppress(ResourceNotFoundError):
            storage.blobs.delete_container(container.name)


@pytest.fixture
def legacy(azurite_server: azurite.Azurite) -> Iterator[AzureStorage]:
    """The (empty) legacy storage account, as the migration sees it."""
    storage = AzureStorage(azurite_server.connection_string, FAST_RETRY)
    _wipe(storage)
    yield storage
    storage.close()


@pytest.fixture
def legacy_with_bulk(legacy: AzureStorage) -> AzureStorage:
    """The legacy account holding the cases and a bulk of calls (``expected_counts``)."""
    generate.write_cases(legacy)
    generate.write_bulk(legacy, calls=BULK_CALLS, seed=BULK_SEED)
    return legacy


def expected_counts() -> dict[str, int]:
    """What a complete migration of ``legacy_with_bulk`` holds."""
    bulk = generate.bulk_entities(calls=BULK_CALLS, seed=BULK_SEED)
    entries = bulk[sources.CALL_TRANSCRIPTS.name]
    return {
        "customers": 3 + len(bulk[sources.CUSTOMERS.name]),
        "calls": 11 + len({e["PartitionKey"] for e in entries}),
        "entries": 20 + len(entries),
    }


def migrated_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Customers, calls and transcript entries (messages, tool executions, events) stored."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM calls),"
        " (SELECT count(*) FROM call_messages) + (SELECT count(*) FROM call_tool_executions)"
        " + (SELECT count(*) FROM call_events)"
    ).fetchone()
    assert row is not None
    return {"customers": row[0], "calls": row[1], "entries": row[2]}


@pytest.fixture
def azure_settings(settings: Settings, azurite_server: azurite.Azurite) -> Settings:
    return settings.model_copy(
        update={
            "azure_connection_string": SecretStr(azurite_server.connection_string),
            "azure_retry_total": 2,
            "azure_retry_backoff_seconds": 0.01,
        }
    )


class Clock:
    """A clock the tests move: ``last_batch_at`` of each batch."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def migrate(azure_settings: Settings, legacy: AzureStorage) -> Iterator[Migrate]:
    engine = build_engine(azure_settings)
    yield Migrate(azure_settings, legacy, engine)
    engine.dispose()


@pytest.fixture(scope="module")
def cases_migrated(
    pg_admin_url: str,
    template_database: str,
    redis_url: str,
    azurite_server: azurite.Azurite,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Database]:
    """One database, shared by a module's read-only tests, holding the migrated cases of
    ``worker.dev.legacy_data.write_cases``."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = stack.create_database(pg_admin_url, name, template=template_database)
    settings = make_settings(
        database_url=url,
        broker_url=redis_url,
        spool_dir=tmp_path_factory.mktemp("spool"),
        azure_connection_string=azurite_server.connection_string,
    )
    storage = AzureStorage(azurite_server.connection_string, FAST_RETRY)
    _wipe(storage)
    generate.write_cases(storage)
    engine = build_engine(settings)
    try:
        assert Migrate(settings, storage, engine)().caught_up
    finally:
        engine.dispose()
        storage.close()
    yield Database(name=name, url=url, admin_url=pg_admin_url)
    stack.drop_database(pg_admin_url, name)


class Migrate:
    """Runs the real batches against the test's database and Azurite."""

    def __init__(self, settings: Settings, storage: AzureStorage, engine: Engine) -> None:
        self.settings = settings
        self.storage = storage
        self.engine = engine
        self.clock = Clock()

    def __call__(self, **kwargs: Any) -> RunResult:
        """Batches until caught up (or as ``kwargs`` say)."""
        return run_batches(
            self.settings, clock=self.clock, storage=self.storage, engine=self.engine, **kwargs
        )


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str | None]]:
    """Row count and a digest of every row of each table the migration writes, to prove that a
    run changed nothing (``migration_rejects.last_seen_at`` moves by design and is left out)."""
    found = {}
    for table, columns in SNAPSHOT_TABLES.items():
        query = sql.SQL(
            "SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r::text))"
            " FROM (SELECT {columns} FROM {table}) r"
        ).format(
            columns=sql.SQL("*")
            if columns is None
            else sql.SQL(", ").join(map(sql.Identifier, columns)),
            table=sql.Identifier(table),
        )
        row = conn.execute(query).fetchone()
        assert row is not None
        found[table] = (int(row[0]), row[1])
    return found


SNAPSHOT_TABLES: dict[str, tuple[str, ...] | None] = {
    "calls": None,
    "call_messages": None,
    "call_tool_executions": None,
    "call_events": None,
    "call_transcripts": None,
    "customers": None,
    "organizations": None,
    "organization_members": None,
    "behavioral_tactics": None,
    "system_prompts": None,
    "migration_rejects": ("source", "key", "raw", "reason", "first_seen_at", "resolved_at"),
}
