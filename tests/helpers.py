"""Shared test helpers: waiting for outcomes (never sleeping) and real worker processes
(started by ``worker.dev.processes``, as the demo and the benchmarks start them)."""

from __future__ import annotations

import base64
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import sql
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from models.base import PARTITIONED_TABLES
from models.payload import QUEUE, TASK_NAME, CallPayload
from tests import factories
from worker.calls.child_tables import CALL_TABLES
from worker.calls.finalize import partition_months
from worker.calls.persist import build_rows, write_call
from worker.cli import app as cli_app
from worker.client.publisher import Publisher
from worker.db import raw_connection, session_scope
from worker.dev import processes
from worker.dev.processes import BIN
from worker.dev.processes import CELERY as CELERY
from worker.dev.processes import PROJECT_ROOT as PROJECT_ROOT
from worker.dev.processes import settings_env as settings_env
from worker.dev.raw_messages import publish_raw as publish_raw
from worker.dev.raw_messages import task_body as task_body
from worker.maintenance.partitions import (
    Partition,
    detach_concurrently,
    ensure_partitions,
    existing_months,
    list_partitions,
)
from worker.settings import Settings

T = TypeVar("T")

#: The ``callstore`` console script of this environment.
CALLSTORE = BIN / "callstore"


def wait_until(
    condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(interval)
        last = condition()
    return last


#: A real ``celery worker`` subprocess (``worker.dev.processes``), with its log in a file.
WorkerProcess = processes.ManagedProcess


def start_worker(
    settings: Settings,
    log_dir: Path,
    *,
    name: str = "w1",
    queues: Iterable[str] = ("calls",),
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
    extra_args: Iterable[str] = (),
    app: str = processes.APP,
) -> WorkerProcess:
    """A worker with ``settings`` (and ``env`` on top); returns once it is ready. ``app``: one
    that wraps the system's (a test's hook in the worker)."""
    return processes.start_worker(
        name,
        env=settings_env(settings, **(env or {})),
        log_dir=log_dir,
        queues=queues,
        concurrency=concurrency,
        extra_args=extra_args,
        ready_timeout=60,
        app=app,
    )


# -- what is stored of a call ----------------------------------------------------------------


def stored_rows(
    conn: psycopg.Connection[Any], call_ids: Iterable[UUID]
) -> dict[UUID, dict[str, int]]:
    """For each call, its row count per table (tables without rows left out). Partitioned
    tables are read through their parent, so rows in detached or archived partitions do not
    count."""
    ids = list(call_ids)
    found: dict[UUID, dict[str, int]] = {call_id: {} for call_id in ids}
    for table in CALL_TABLES:
        rows = conn.execute(
            sql.SQL(
                "SELECT call_id, count(*) FROM {} WHERE call_id = ANY(%s) GROUP BY call_id"
            ).format(sql.Identifier(table)),
            (ids,),
        ).fetchall()
        for call_id, count in rows:
            found[call_id][table] = int(count)
    return found


def assert_whole_or_gone(
    conn: psycopg.Connection[Any],
    expected: Mapping[UUID, Mapping[str, int]],
    kept: set[UUID],
    *,
    expired_months_attached: bool = False,
) -> None:
    """Every call in ``kept`` has exactly its ``expected`` rows; every other one has none.

    ``expired_months_attached``: an expired month is still attached (its detach comes later),
    so a deleted call's timeline rows in it may linger until then — but never its ``calls``
    row or any unpartitioned child.
    """
    stored = stored_rows(conn, expected)
    for call_id, rows in expected.items():
        if call_id in kept:
            assert stored[call_id] == dict(rows), f"call {call_id}: {stored[call_id]} != {rows}"
        elif expired_months_attached:
            assert set(stored[call_id]) <= set(PARTITIONED_TABLES), (
                f"call {call_id}: {stored[call_id]}"
            )
        else:
            assert stored[call_id] == {}, f"call {call_id} not gone: {stored[call_id]}"


def orphan_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows of attached partitions whose call is gone, per partitioned table (none expected)."""
    found = {}
    for table in PARTITIONED_TABLES:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} t"
                " WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.call_id = t.call_id)"
            ).format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        if row[0]:
            found[table] = int(row[0])
    return found


def drop_all_partitions(conn: psycopg.Connection[Any]) -> None:
    """Remove every monthly partition (the template makes the real current months), so a test
    in simulated time starts from none."""
    for partition in list_partitions(conn):
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition.name)))


def leave_detach_pending(
    conn: psycopg.Connection[Any], reader: psycopg.Connection[Any], partition: Partition
) -> None:
    """Leave ``partition`` *pending detach*, as a retention run cut off mid-detach does: its
    ``DETACH ... CONCURRENTLY`` (on the autocommit ``conn``) times out waiting for ``reader``'s
    open transaction on the parent table."""
    reader.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(partition.table)))
    conn.execute("SET lock_timeout = '200ms'")
    try:
        detach_concurrently(conn, partition)
    except psycopg.errors.LockNotAvailable:
        pass
    else:
        raise AssertionError(f"the detach of {partition.name} did not wait for the reader")
    finally:
        conn.execute("RESET lock_timeout")
        reader.rollback()


def attached_months(conn: psycopg.Connection[Any]) -> dict[str, list[date]]:
    """Per partitioned table, the months of its attached partitions, in order."""
    return {table: sorted(months) for table, months in existing_months(conn).items()}


def store_call(
    engine: Engine, seed: int, start: datetime, *, source: str = "runtime"
) -> tuple[UUID, dict[str, int]]:
    """Persist a short simulated call that started at ``start`` (making its months if needed);
    return its id and its rows per table. ``source="azure"`` stores it as a migrated call."""
    payload = CallPayload.model_validate(factories.small_payload(seed, start=start))
    rows = build_rows(payload)
    rows.call["source"] = source
    with session_scope(engine) as session:
        conn = raw_connection(session)
        ensure_partitions(conn, months=partition_months(payload))
        result = write_call(conn, rows)
    return payload.call_id, dict(result.rows)


def publish_calls(settings: Settings, bodies: Iterable[Mapping[str, Any]]) -> None:
    """Publish each payload as ``calls.finalize``, as a producer other than the recorder does."""
    publisher = Publisher(settings)
    try:
        for body in bodies:
            publisher.send(TASK_NAME, args=[dict(body)], queue=QUEUE)
    finally:
        publisher.close()


def invoke_cli(*args: str) -> Result:
    """``callstore ARGS`` in this process; an exception other than an exit is raised."""
    result = _runner.invoke(cli_app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


_runner = CliRunner()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_request(
    url: str, *, method: str = "GET", auth: tuple[str, str] | None = None, body: bytes = b""
) -> tuple[int, str]:
    """Status and body of one request to a test server of ours (errors are answers too)."""
    data = body if method not in ("GET", "HEAD") else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310  (our servers)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def http_get(url: str, *, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    return http_request(url, auth=auth)


def scalar(database_url: str, query: str, *params: Any) -> Any:
    """The first column of the first row of ``query`` (None without a row), on a connection of
    its own."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return None if row is None else row[0]
