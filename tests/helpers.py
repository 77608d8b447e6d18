"""Shared test helpers: waiting for outcomes (never sleeping) and real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from models.base import PARTITIONED_TABLES
from models.payload import CallPayload
from tests import factories
from worker.calls.child_tables import CALL_TABLES
from worker.calls.finalize import partition_months
from worker.calls.persist import build_rows, write_call
from worker.db import raw_connection, session_scope
from worker.maintenance.partitions import ensure_partitions, existing_months, list_partitions
from worker.settings import ENV_PREFIX, Settings

T = TypeVar("T")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CELERY = Path(sys.executable).with_name("celery")


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


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """A process environment carrying ``settings`` as ``CALLSTORE_*`` variables (and nothing
    else of ours, so a developer's own variables never leak into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[ENV_PREFIX + name.upper()] = str(value)
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    """A real ``celery worker`` subprocess, with its log captured to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path
    name: str
    _log_handle: object = field(repr=False, default=None)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-4000:]}")
            return " ready." in self.log()

        wait_until(ready, timeout=timeout, what=f"worker {self.name} to be ready")

    def pool_pids(self) -> list[int]:
        """PIDs of the prefork pool processes (children of the main worker process)."""
        try:
            out = subprocess.run(
                ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
        except FileNotFoundError:  # pragma: no cover - ps is part of every test machine
            return []
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crash would."""
        for pid in [*self.pool_pids(), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        handle = self._log_handle
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]


def start_worker(
    settings: Settings,
    log_dir: Path,
    *,
    name: str = "w1",
    queues: Iterable[str] = ("calls",),
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
    extra_args: Iterable[str] = (),
) -> WorkerProcess:
    """Start ``celery -A worker.celery_app worker`` with ``settings``; returns once it is ready."""
    log_path = log_dir / f"worker-{name}.log"
    handle = log_path.open("wb")
    command = [
        str(CELERY), "-A", "worker.celery_app", "worker",
        "--hostname", f"{name}@%h", "--queues", ",".join(queues),
        "--concurrency", str(concurrency), "--pool", "prefork",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        *extra_args,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=settings_env(settings, **(env or {})),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(process, log_path, name, handle)
    worker.wait_ready()
    return worker


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
