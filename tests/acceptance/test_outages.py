"""Outages that refuse writes rather than connections — PostgreSQL read-only, Redis at its
memory limit — against one real worker: the calls wait, the worker stays up, nothing is
acknowledged as done until it is stored, and nothing waits out the visibility timeout."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from tests import factories
from tests.conftest import Database
from tests.helpers import WorkerProcess, publish_calls, publish_raw, task_body, wait_until
from worker.dev import stack
from worker.settings import Settings


@pytest.fixture(scope="module")
def module_worker_settings(module_settings: Settings) -> Settings:
    """Few, quick retries (so a lost call would be dead-lettered or dropped within the test),
    and a visibility timeout far longer than any wait below."""
    return module_settings.model_copy(
        update={
            "finalize_max_retries": 1,
            "finalize_retry_backoff_max": 1,
            "broker_visibility_timeout": 600,
        }
    )


@pytest.fixture(scope="module")
def worker(module_worker: WorkerProcess) -> WorkerProcess:
    return module_worker


@pytest.fixture(scope="module")
def outage_settings(module_worker_settings: Settings) -> Settings:
    return module_worker_settings


def _all_stored_none_dead(
    database: Database, bodies: list[dict[str, Any]], *, timeout: float, what: str
) -> None:
    wait_until(lambda: _stored(database, bodies) == len(bodies), timeout=timeout, what=what)
    assert _dead(database, bodies) == 0


def _count(database: Database, sql: str, *params: Any) -> int:
    with database.connect(autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _stored(database: Database, bodies: list[dict[str, Any]]) -> int:
    ids = [body["call_id"] for body in bodies]
    return _count(database, "SELECT count(*) FROM calls WHERE call_id = ANY(%s::uuid[])", ids)


def _dead(database: Database, bodies: list[dict[str, Any]]) -> int:
    ids = [body["call_id"] for body in bodies]
    return _count(
        database, "SELECT count(*) FROM failed_payloads WHERE call_id = ANY(%s::uuid[])", ids
    )


def _read_only(database: Database, on: bool) -> None:
    """What a standby looks like after a failover: every new transaction is read-only."""
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                sql.Identifier(database.name), sql.SQL("on" if on else "off")
            )
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database.name,),
        )


def test_a_read_only_database_keeps_every_call_in_the_queue_until_it_is_writable(
    outage_settings: Settings, module_database: Database, worker: WorkerProcess
) -> None:
    """Calls from a producer other than ``CallRecorder`` (no outbox to fall back on) survive
    retries exhausted and a dead-letter insert refused the same way."""
    bodies = [factories.small_payload(seed) for seed in range(7000, 7004)]
    _read_only(module_database, True)
    try:
        for body in bodies:
            publish_raw(outage_settings, task_body([body]))
        wait_until(
            lambda: worker.log().count("read-only") >= 2 * len(bodies),
            timeout=60,
            what="every call to fail on the read-only database more than once",
        )
        assert _stored(module_database, bodies) == 0
    finally:
        _read_only(module_database, False)
    _all_stored_none_dead(
        module_database, bodies, timeout=60, what="every call stored once it is writable"
    )
    assert worker.alive()


def test_redis_at_its_memory_limit_while_finalizes_retry_keeps_the_worker_and_the_calls(
    outage_settings: Settings,
    module_database: Database,
    worker: WorkerProcess,
    stack_paths: stack.StackPaths,
) -> None:
    bodies = [factories.small_payload(seed) for seed in range(7100, 7104)]
    client = redis.Redis(unix_socket_path=str(stack_paths.redis_socket))
    socket_dir = stack.postgres_socket_dir(stack_paths)
    stack.stop_postgres(stack_paths, mode="fast")
    try:
        publish_calls(outage_settings, bodies)
        wait_until(
            lambda: worker.log().count("will be retried") >= 2,
            timeout=60,
            what="finalizes retrying while PostgreSQL is down",
        )
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", str(max(1024 * 1024, used // 2)))
        try:
            wait_until(
                lambda: worker.log().count("maxmemory") >= 3,
                timeout=60,
                what="the worker to meet Redis's memory limit",
            )
            assert worker.alive(), worker.log()[-3000:]
        finally:
            client.config_set("maxmemory", "0")
    finally:
        stack.resume_postgres(stack_paths, socket_dir=socket_dir)
    _all_stored_none_dead(
        module_database,
        bodies,
        timeout=90,
        what="every call stored well before the visibility timeout",
    )
    assert worker.alive()
