"""Real servers for the test session: an embedded PostgreSQL and Redis, started once.

A template database is migrated once; every test that needs a database gets its own clone
(``CREATE DATABASE ... TEMPLATE``), so tests never see each other's rows. Nothing stands in
for PostgreSQL or Redis. Azurite's fixtures are in ``tests/azure_fixtures.py``.

The tests come in three tiers, one directory each, whose ``conftest.py`` marks every test in
it: ``unit`` (pure), ``integration`` (in process, on the real servers) and ``acceptance``
(processes of ours). Fixtures both of the last two use live here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from sqlalchemy import Engine

from tests import factories
from tests.factories import make_settings
from worker.calls.finalize import finalize_call
from worker.db import build_engine, dispose_engine
from worker.dev import stack
from worker.settings import ENV_PREFIX, Settings, get_client_settings, get_settings

pytest_plugins = ["tests.azure_fixtures"]

TEMPLATE = "callstore_template"
TIERS = ("unit", "integration", "acceptance")
SESSION_START = datetime.now(UTC)


def pytest_configure(config: pytest.Config) -> None:
    # The tests build their settings explicitly; a developer's environment must not leak in.
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        del os.environ[key]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test outside the three tier directories would escape every fast loop's selection."""
    untiered = [
        item.nodeid
        for item in items
        if sum(item.get_closest_marker(tier) is not None for tier in TIERS) != 1
    ]
    if untiered:
        raise pytest.UsageError(
            f"tests outside tests/unit, tests/integration, tests/acceptance: {untiered}"
        )


@dataclass(frozen=True)
class Database:
    name: str
    url: str
    admin_url: str

    @property
    def sqlalchemy_url(self) -> str:
        return "postgresql+psycopg://" + self.url.split("://", 1)[1]

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, **kwargs)


@pytest.fixture(scope="session")
def stack_paths(tmp_path_factory: pytest.TempPathFactory) -> stack.StackPaths:
    return stack.paths(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def pg_admin_url(stack_paths: stack.StackPaths) -> Iterator[str]:
    url = stack.start_postgres(stack_paths)
    yield url
    stack.stop_postgres(stack_paths, mode="immediate")


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> str:
    stack.drop_database(pg_admin_url, TEMPLATE)
    url = stack.create_database(pg_admin_url, TEMPLATE)
    stack.migrate_database(url, premake_months=3)
    return TEMPLATE


@pytest.fixture
def empty_database(pg_admin_url: str) -> Iterator[Database]:
    """A database made from nothing (not from the migrated template)."""
    name = f"empty_{uuid.uuid4().hex[:12]}"
    url = stack.create_database(pg_admin_url, name)
    yield Database(name=name, url=url, admin_url=pg_admin_url)
    stack.drop_database(pg_admin_url, name)


@contextmanager
def migrated_database(admin_url: str, template: str, prefix: str = "test") -> Iterator[Database]:
    """A clone of the migrated template, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = stack.create_database(admin_url, name, template=template)
    yield Database(name=name, url=url, admin_url=admin_url)
    stack.drop_database(admin_url, name)


@pytest.fixture
def database(pg_admin_url: str, template_database: str) -> Iterator[Database]:
    with migrated_database(pg_admin_url, template_database) as clone:
        yield clone


@pytest.fixture(scope="module")
def module_database(pg_admin_url: str, template_database: str) -> Iterator[Database]:
    """A database from the migrated template shared by one module's tests (a module-scoped
    system of processes: worker, Flower), dropped after them; each test tells its calls apart by
    their ids."""
    name = f"module_{uuid.uuid4().hex[:12]}"
    url = stack.create_database(pg_admin_url, name, template=template_database)
    yield Database(name=name, url=url, admin_url=pg_admin_url)
    stack.drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def module_settings(
    module_database: Database,
    redis_url: str,
    stack_paths: stack.StackPaths,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings on ``module_database`` and the session's Redis, emptied once for the module."""
    redis.Redis(unix_socket_path=str(stack_paths.redis_socket)).flushall()
    return make_settings(
        database_url=module_database.url,
        broker_url=redis_url,
        spool_dir=tmp_path_factory.mktemp("module-spool"),
    )


@pytest.fixture(scope="session")
def redis_url(stack_paths: stack.StackPaths) -> Iterator[str]:
    url = stack.start_redis(stack_paths)
    yield url
    stack.stop_redis(stack_paths)


@pytest.fixture
def broker_url(redis_url: str, stack_paths: stack.StackPaths) -> str:
    """The session's Redis, emptied for this test."""
    redis.Redis(unix_socket_path=str(stack_paths.redis_socket)).flushall()
    return redis_url


@pytest.fixture
def redis_client(broker_url: str, stack_paths: stack.StackPaths) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(stack_paths.redis_socket))


@pytest.fixture
def settings(database: Database, broker_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url=database.url, broker_url=broker_url, spool_dir=tmp_path / "spool"
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    built = build_engine(settings)
    yield built
    built.dispose()


@pytest.fixture
def calls(settings: Settings, engine: Engine) -> list[dict[str, Any]]:
    """Five small calls finalized in the test's database, started an hour before the session
    (the consistency checks, in process and through ``callstore check``)."""
    start = SESSION_START - timedelta(hours=1)
    bodies = [factories.small_payload(seed, start=start) for seed in range(1, 6)]
    for body in bodies:
        finalize_call(body, settings=settings, task_id="t", engine=engine)
    return bodies


@pytest.fixture
def conn(database: Database) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for arranging and asserting on the test's database."""
    with database.connect(autocommit=True) as connection:
        yield connection


@pytest.fixture
def configured(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    """Make ``settings`` the process settings (environment + cache), as a deployed process has."""
    monkeypatch.chdir(tmp_path)
    from tests.helpers import settings_env

    for key, value in settings_env(settings).items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    get_client_settings.cache_clear()
    dispose_engine()
    yield settings
    dispose_engine()
    get_settings.cache_clear()
    get_client_settings.cache_clear()
