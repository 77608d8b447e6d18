"""``callstore stack up|down|status`` as an operator runs it: real processes, real servers.

The stack under test is a second one, in its own directory, beside the session's servers; the
fixture stops whatever it started, whatever the test's outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from models.base import PARTITIONED_TABLES
from models.tables import metadata
from worker.dev import stack
from worker.maintenance.partitions import add_months, month_range, month_start, partition_name
from worker.settings import ENV_PREFIX

CALLSTORE = Path(sys.executable).with_name("callstore")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "stack"
    yield directory
    stack.down(directory)


def _callstore(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["CALLSTORE_PARTITION_PREMAKE_MONTHS"] = "1"
    env["COLUMNS"] = "40"  # a narrow terminal must not break the URLs
    result = subprocess.run(
        [str(CALLSTORE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _pids(data_dir: Path) -> tuple[int | None, int | None]:
    info = stack.info(stack.paths(data_dir))
    return info.postgres_pid, info.redis_pid


def _redis(broker_url: str) -> redis.Redis:
    scheme, _, socket_path = broker_url.partition("://")
    assert scheme == "redis+socket"
    return redis.Redis(unix_socket_path=socket_path)


def _scalars(conn: psycopg.Connection[Any], query: str) -> set[Any]:
    return {row[0] for row in conn.execute(query).fetchall()}


def test_up_down_up_keeps_the_data_and_up_twice_reuses_the_servers(
    data_dir: Path, tmp_path: Path
) -> None:
    first = _callstore("stack", "up", "--data-dir", str(data_dir), cwd=tmp_path)

    env = stack.read_env(data_dir / "stack.env")
    assert set(env) == {"CALLSTORE_DATABASE_URL", "CALLSTORE_BROKER_URL"}
    lines = first.stdout.splitlines()
    for url in env.values():  # each URL whole on one line, however narrow the terminal
        assert any(url in line for line in lines), first.stdout
    running = _pids(data_dir)
    assert all(running)

    current = month_start(datetime.now(UTC))
    with psycopg.connect(env["CALLSTORE_DATABASE_URL"], autocommit=True) as conn:
        tables = _scalars(
            conn,
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition",
        )
        assert tables >= set(metadata.tables)
        assert "vector" in _scalars(conn, "SELECT extname FROM pg_extension")
        partitions = _scalars(
            conn,
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relispartition",
        )
        for table in PARTITIONED_TABLES:
            for month in month_range(current, add_months(current, 1)):  # premake 1
                assert partition_name(table, month) in partitions
        conn.execute("INSERT INTO organizations (name) VALUES ('survives a restart')")
    broker = _redis(env["CALLSTORE_BROKER_URL"])
    broker.rpush("calls", b"a queued call")
    broker.close()

    _callstore("stack", "up", "--data-dir", str(data_dir), cwd=tmp_path)
    assert _pids(data_dir) == running
    _callstore("stack", "status", "--data-dir", str(data_dir), cwd=tmp_path)

    down = _callstore("stack", "down", "--data-dir", str(data_dir), cwd=tmp_path)
    assert "Traceback" not in down.stdout + down.stderr
    assert down.stderr == ""
    assert _pids(data_dir) == (None, None)
    status = _callstore("stack", "status", "--data-dir", str(data_dir), cwd=tmp_path, check=False)
    assert status.returncode == 1
    assert status.stdout.count("stopped") == 2

    _callstore("stack", "up", "--data-dir", str(data_dir), cwd=tmp_path)
    assert all(_pids(data_dir))
    assert stack.read_env(data_dir / "stack.env") == env
    with psycopg.connect(env["CALLSTORE_DATABASE_URL"]) as conn:
        row = conn.execute("SELECT name FROM organizations").fetchone()
    assert row == ("survives a restart",)
    broker = _redis(env["CALLSTORE_BROKER_URL"])
    assert broker.lrange("calls", 0, -1) == [b"a queued call"]
    broker.close()
