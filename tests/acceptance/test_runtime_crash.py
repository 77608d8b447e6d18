"""A call survives its runtime: real runtime processes (``worker.dev.runtime``) SIGKILLed mid-call,
real workers, Redis and PostgreSQL.

What a killed runtime recorded up to one journal flush before the kill is stored once, as an
``interrupted`` call, recovered by the next runtime on the host or by ``callstore spool flush``;
two runtimes sharing a spool never take each other's live journals; a journal cut mid-write
gives back its intact part; with checkpoints, a lost host (its spool deleted) leaves the last
checkpoint stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Database, migrated_database
from tests.factories import make_settings
from tests.helpers import CALLSTORE, settings_env, start_worker, wait_until
from worker.client.journal import journal_paths, list_journals
from worker.dev import runtime
from worker.dev.processes import ManagedProcess
from worker.settings import Settings

FLUSH_SECONDS = 0.25
#: How late the keeper thread may run on a loaded 2-core machine, on top of its interval.
SCHEDULING_SLACK = 0.15


@pytest.fixture(scope="module")
def crash_database(pg_admin_url: str, template_database: str) -> Iterator[Database]:
    """One database for the module's calls (each test checks its own): a worker is started once."""
    with migrated_database(pg_admin_url, template_database, "crash") as clone:
        yield clone


@pytest.fixture(scope="module")
def worker(
    crash_database: Database, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A worker on the module's database; what it was configured with."""
    settings = make_settings(database_url=crash_database.url, broker_url=redis_url)
    process = start_worker(settings, tmp_path_factory.mktemp("crash-worker"))
    yield settings
    process.stop()


@pytest.fixture
def crash_settings(worker: Settings, tmp_path: Path) -> Settings:
    """The runtimes' settings: the worker's servers, this test's spool, quick journal flushes."""
    return worker.model_copy(
        update={
            "spool_dir": tmp_path / "spool",
            "journal_flush_seconds": FLUSH_SECONDS,
            "checkpoint_seconds": 0,
        }
    )


def _start(settings: Settings, tmp_path: Path, name: str, *args: str) -> ManagedProcess:
    return runtime.start(name, *args, env=settings_env(settings), log_dir=tmp_path / "logs")


def _kill_after(process: ManagedProcess, entries: int) -> tuple[runtime.Recorded, float]:
    """SIGKILL the runtime once each of its calls has ``entries`` entries; what it had recorded,
    and when it was killed."""
    wait_until(
        lambda: (
            (r := runtime.recorded(process)).call_ids
            and all(len(r.entries[c]) >= entries for c in r.call_ids)
        ),
        timeout=60,
        what=f"{entries} entries per call",
    )
    killed_at = time.time()
    process.kill()
    process.stop()
    return runtime.recorded(process), killed_at


def _stored(database: Database, call_id: str) -> dict[str, Any] | None:
    with database.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT status, error_message, total_messages, revision FROM calls WHERE call_id = %s",
            (call_id,),
        ).fetchone()
        if row is None:
            return None
        contents = [
            r[0]
            for r in conn.execute(
                "SELECT content FROM call_messages WHERE call_id = %s ORDER BY sequence",
                (call_id,),
            ).fetchall()
        ]
    return {"status": row[0], "error": row[1], "messages": row[2], "revision": row[3],
            "contents": contents}  # fmt: skip


def _stored_soon(database: Database, call_id: str) -> dict[str, Any]:
    """The call as stored, once a worker has stored it."""
    stored = wait_until(
        lambda: _stored(database, call_id), timeout=30, what=f"call {call_id} to be stored"
    )
    assert stored is not None
    return stored


def _assert_recorded_prefix(
    stored: dict[str, Any], recorded: runtime.Recorded, call_id: str, killed_at: float
) -> None:
    """Stored once, interrupted, with exactly the first k entries, k at least what was recorded
    one flush interval before the kill."""
    count = len(stored["contents"])
    assert stored["status"] == "interrupted"
    assert stored["messages"] == count  # the summary covers what was recorded
    assert stored["contents"] == [f"entry {n}" for n in range(count)]
    assert count <= len(recorded.entries[call_id])
    assert count >= recorded.before(call_id, killed_at - FLUSH_SECONDS - SCHEDULING_SLACK)


def test_a_killed_runtime_s_calls_are_recovered_by_its_successor_exactly_once(
    crash_settings: Settings, crash_database: Database, tmp_path: Path
) -> None:
    victim = _start(crash_settings, tmp_path, "runtime-1", "--calls", "2", "--entries", "400",
                    "--pace", "0.01")  # fmt: skip
    recorded, killed_at = _kill_after(victim, 30)
    assert len(list_journals(crash_settings.spool_dir)) == 2

    successor = _start(crash_settings, tmp_path, "runtime-2", "--calls", "1", "--entries", "3",
                       "--pace", "0.01", "--finalize", "--after-orphans")  # fmt: skip
    wait_until(lambda: not successor.alive(), timeout=60, what="the successor to finish")
    successor.stop()
    after = runtime.recorded(successor)
    assert [e["event"] for e in after.events if "orphans" in e["event"]] == ["orphans_recovered"]
    stored = {c: _stored_soon(crash_database, c) for c in [*recorded.call_ids, *after.call_ids]}
    for call_id in recorded.call_ids:
        _assert_recorded_prefix(stored[call_id], recorded, call_id, killed_at)
        assert "recovered from its journal" in stored[call_id]["error"]
    assert stored[after.call_ids[0]]["status"] == "ended"
    assert journal_paths(crash_settings.spool_dir) == []
    ids = [*recorded.call_ids, *after.call_ids]
    with crash_database.connect(autocommit=True) as conn:
        assert conn.execute(
            "SELECT count(*) FROM calls WHERE call_id = ANY(%s)", (ids,)
        ).fetchone() == (3,)
        assert conn.execute(
            "SELECT count(*) FROM failed_payloads WHERE call_id = ANY(%s)", (ids,)
        ).fetchone() == (0,)


def _callstore(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CALLSTORE), *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_runtimes_sharing_a_spool_never_take_each_others_live_journals_and_a_cut_one_is_recovered(
    crash_settings: Settings, crash_database: Database, tmp_path: Path
) -> None:
    """A runtime is killed and its journal's last line cut mid-write; two live runtimes on the
    same spool, and ``callstore spool flush`` beside them, recover the dead one's journal (its
    intact part) and leave each other's live journals alone."""
    victim = _start(crash_settings, tmp_path, "victim", "--entries", "400", "--pace", "0.01")
    recorded, killed_at = _kill_after(victim, 40)
    (dead,) = list_journals(crash_settings.spool_dir)
    data = dead.path.read_bytes()
    os.truncate(dead.path, data.rindex(b"\n", 0, len(data) - 1) + 30)  # a torn last line

    stop = tmp_path / "stop"
    slow = ("--entries", "100000", "--pace", "0.05", "--finalize", "--until", str(stop))
    live = [_start(crash_settings, tmp_path, f"live-{n}", *slow) for n in (1, 2)]
    wait_until(
        lambda: sum(j.live for j in list_journals(crash_settings.spool_dir)) == 2,
        timeout=60,
        what="both live runtimes' journals",
    )
    status = _callstore(crash_settings, "spool", "status")
    assert status.returncode == 0, status.stderr
    assert ": 2 live," in " ".join(status.stdout.split())
    flushed = _callstore(crash_settings, "spool", "flush")
    assert flushed.returncode == 0, flushed.stderr
    assert "2 live left alone" in " ".join(flushed.stdout.split())  # by a third process
    assert all(process.alive() for process in live)
    stop.touch()

    (dead_call,) = recorded.call_ids
    stored = _stored_soon(crash_database, dead_call)
    count = len(stored["contents"])
    assert stored["status"] == "interrupted"
    assert stored["contents"] == [f"entry {n}" for n in range(count)]
    assert "a damaged tail was dropped (line" in stored["error"]
    assert count >= recorded.before(dead_call, killed_at - FLUSH_SECONDS - SCHEDULING_SLACK) - 1
    for process in live:
        process.process.wait(timeout=60)
        process.stop()
        (call_id,) = runtime.recorded(process).call_ids
        finished = _stored_soon(crash_database, call_id)
        entries = len(runtime.recorded(process).entries[call_id])
        assert finished["status"] == "ended" and finished["messages"] == entries


def test_a_lost_host_leaves_the_last_checkpoint_stored(
    crash_settings: Settings, crash_database: Database, tmp_path: Path
) -> None:
    """The runtime's whole spool is deleted mid-call (the host's disk is gone) and the runtime
    is killed: what remains is its last checkpoint, stored as ``in_progress``, which
    ``callstore check`` reports as stale with its time."""
    settings = crash_settings.model_copy(
        update={"checkpoint_seconds": 0.5, "check_stale_in_progress_seconds": 1}
    )
    host = _start(settings, tmp_path, "host", "--entries", "2000", "--pace", "0.01")
    wait_until(
        lambda: (
            (r := runtime.recorded(host)).call_ids
            and (_stored(crash_database, r.call_ids[0]) or {}).get("messages", 0) >= 20
        ),
        timeout=60,
        what="a checkpoint with 20 messages",
    )
    shutil.rmtree(settings.spool_dir)
    host.kill()
    host.stop()
    (call_id,) = runtime.recorded(host).call_ids
    stored = _stored(crash_database, call_id)
    assert stored is not None and stored["status"] == "in_progress"
    count = len(stored["contents"])
    assert count >= 20 and stored["contents"] == [f"entry {n}" for n in range(count)]

    later = datetime.now(UTC) + timedelta(seconds=30)
    check = _callstore(
        settings, "check", "--only", "stuck_calls", "--json", "--now", later.isoformat()
    )
    report = json.loads(check.stdout)
    stale = [d for d in report["discrepancies"] if d["class"] == "stale_in_progress"]
    assert [d["keys"]["call_id"] for d in stale] == [call_id]
    assert stale[0]["keys"]["last_checkpoint_at"]
