"""Malformed payloads end in ``failed_payloads`` with a clear error, and can be replayed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from models.payload import QUEUE, TASK_NAME
from tests import factories
from tests.conftest import Database
from tests.helpers import WorkerProcess, settings_env, start_worker, wait_until
from tests.strategies import malformed_payloads
from worker.calls.dead_letters import payload_bytes
from worker.calls.finalize import dead_letter
from worker.client.publisher import Publisher
from worker.errors import ConcurrencyConflict
from worker.settings import Settings

CALLSTORE = str(Path(sys.executable).with_name("callstore"))


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = start_worker(settings, tmp_path)
    yield process
    process.stop()


def _digest(raw: Any) -> str:
    return hashlib.sha256(payload_bytes(raw)).hexdigest()


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(malformed_payloads(), min_size=8, max_size=8))
def test_malformed_payloads_are_dead_lettered_and_never_crash_a_worker(
    settings: Settings, database: Database, worker: WorkerProcess, bodies: list[Any]
) -> None:
    publisher = Publisher(settings)
    for body in bodies:
        publisher.send(TASK_NAME, args=[body], queue=QUEUE)
    publisher.close()
    expected = {_digest(body) for body in bodies}

    def dead_lettered() -> set[str]:
        with database.connect() as conn:
            rows = conn.execute("SELECT payload_sha256 FROM failed_payloads").fetchall()
        return {r[0] for r in rows}

    wait_until(lambda: expected <= dead_lettered(), timeout=60, what="every payload dead-lettered")
    with database.connect() as conn:
        errors = conn.execute(
            "SELECT error_class, error_message FROM failed_payloads WHERE payload_sha256 = ANY(%s)",
            (list(expected),),
        ).fetchall()
        assert conn.execute("SELECT count(*) FROM calls").fetchone() == (0,)
    assert all(cls == "PayloadInvalid" and message for cls, message in errors)
    assert worker.process.poll() is None, "the worker must survive bad input"


def _cli(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLSTORE, "dead-letter", *args],
        env=settings_env(settings, COLUMNS="200"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_dead_letters_are_listed_shown_and_replayed(
    settings: Settings, database: Database, engine: Engine, worker: WorkerProcess, tmp_path: Path
) -> None:
    good = factories.small_payload(31)
    recoverable = dead_letter(
        good, ConcurrencyConflict("deadlock detected"), task_id="t-1", engine=engine
    )
    bad = factories.small_payload(32, status="finished")
    hopeless = dead_letter(bad, ValueError("status: not allowed"), task_id="t-2", engine=engine)

    listing = _cli(settings, tmp_path, "list")
    assert listing.returncode == 0, listing.stderr
    assert str(recoverable.dead_letter_id) in listing.stdout
    assert "ConcurrencyConflict" in listing.stdout

    shown = _cli(settings, tmp_path, "show", str(recoverable.dead_letter_id))
    assert shown.returncode == 0, shown.stderr
    assert "deadlock detected" in shown.stdout and good["call_id"] in shown.stdout

    replayed = _cli(settings, tmp_path, "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert "1 replayed, 1 still invalid" in replayed.stdout
    assert "status" in replayed.stdout  # why the other one was not replayed

    def persisted() -> bool:
        with database.connect() as conn:
            return conn.execute(
                "SELECT count(*) FROM calls WHERE call_id = %s", (good["call_id"],)
            ).fetchone() == (1,)

    wait_until(persisted, timeout=60, what="the replayed call to be persisted")
    with database.connect() as conn:
        statuses = dict(conn.execute("SELECT id, status FROM failed_payloads").fetchall())
    assert statuses[recoverable.dead_letter_id] == "replayed"
    assert statuses[hopeless.dead_letter_id] == "pending"

    missing = _cli(settings, tmp_path, "show", "not-a-uuid")
    assert missing.returncode != 0 and "not a dead-letter id" in missing.stderr
