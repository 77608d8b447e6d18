"""The spool on a full disk, with real failing writes: a process whose file size limit
(``RLIMIT_FSIZE``) is below the size of a call writes to a real directory. Either the write
fails (``EFBIG``, as ``ENOSPC`` does) and leaves nothing, or the kernel kills the writer in the
middle of it (``SIGXFSZ``), as any crash would, and the next flush sweeps what it left."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests import factories
from worker.client.spool import SENT_DIR, Spool
from worker.durable import STALE_TEMPORARY_SECONDS

#: Bytes a process may write to one file: far less than one call.
LIMIT = 4096

WRITER = """
import json, signal, sys
from pathlib import Path

from worker.client.spool import Spool

if sys.argv[2] == "killed":
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it; the kernel's default kills
payload = json.loads(sys.stdin.read())
spool = Spool(Path(sys.argv[1]))
try:
    if sys.argv[3] == "spool":
        spool.put("calls.finalize", "calls", [payload], reason="broker down", key="k")
    else:
        spool.record_sent("calls.finalize", "calls", [payload], key="k", revision=1)
except OSError as error:
    print(f"refused: {error}")
    sys.exit(3)
"""


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _write(spool_dir: Path, how: str, where: str) -> subprocess.CompletedProcess[str]:
    payload = factories.small_payload(1201)
    assert len(json.dumps(payload)) > 2 * LIMIT
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(spool_dir), how, where],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        preexec_fn=_limit_file_size,  # only setrlimit, before exec
    )


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def test_a_write_that_fails_on_a_full_disk_leaves_no_temporary(tmp_path: Path) -> None:
    for where, directory in (("spool", tmp_path), ("outbox", tmp_path / SENT_DIR)):
        result = _write(tmp_path, "refused", where)
        assert result.returncode == 3, result.stderr
        assert "File too large" in result.stdout
        assert _names(directory) == [], where


def _never_sent(task: str, queue: str, args: list[Any]) -> str:
    raise AssertionError("a partial file must never be sent")


def test_what_a_writer_killed_mid_write_leaves_is_swept_by_the_next_flush(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for where in ("spool", "outbox"):
        killed = _write(tmp_path, "killed", where)
        assert killed.returncode == -signal.SIGXFSZ, killed.stderr
    left = [p for p in (*tmp_path.iterdir(), *(tmp_path / SENT_DIR).iterdir()) if p.is_file()]
    assert len(left) == 2 and all(p.name.endswith(".tmp") for p in left), left
    assert all(p.stat().st_size == LIMIT for p in left), "each holds the first bytes of a call"

    # Just written: a flush cannot tell it from a write in progress and leaves it.
    assert spool.flush(_never_sent).sent == 0
    assert all(p.exists() for p in left)

    then = time.time() - STALE_TEMPORARY_SECONDS - 1
    for path in left:
        os.utime(path, (then, then))
    flushed = spool.flush(_never_sent)
    assert flushed.sent == 0 and flushed.corrupt == 0
    reconciled = spool.reconcile_sent(
        settled=lambda ids: {},
        in_flight=lambda ids: set(),
        send=_never_sent,
        now=time.time(),
        redeliver_after=3600,
    )
    assert reconciled.redelivered == 0
    assert not any(p.exists() for p in left)
    assert spool.stats().files == 0 and spool.stats().unsettled == 0
