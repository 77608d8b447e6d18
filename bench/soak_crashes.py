"""The soak's runtime crashes: runtime processes SIGKILLed mid-call, their calls checked one by one.

Runtime processes (``worker.dev.runtime``) share the soak's spool directory and record a few
calls each at a human pace; each is SIGKILLed after a random number of entries. The soak's own
recorders' drainers (and the final flush) recover the journals they leave. Every such call must
end stored exactly once as ``interrupted``, with exactly the entries its runtime recorded up to
one journal flush before the kill (a prefix of what it recorded: ``entry 0``, ``entry 1``, ...).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from worker.dev import processes, runtime
from worker.settings import Settings

#: How late the keeper thread may run on a loaded machine, on top of its flush interval.
SCHEDULING_SLACK = 0.25


@dataclass(frozen=True)
class Crash:
    """One killed runtime: what it had recorded, and when it was killed."""

    recorded: runtime.Recorded
    killed_at: float


@dataclass
class CrashCheck:
    calls: int = 0
    #: Stored as interrupted with exactly a prefix at least as long as the flush allows.
    recovered: int = 0
    lost: int = 0
    #: Stored, but not as its recorded prefix (or not as interrupted).
    wrong: int = 0
    entries_recorded: int = 0
    entries_stored: int = 0


def crash_one(
    settings: Settings, log_dir: Path, name: str, *, calls: int, rng: random.Random
) -> Crash:
    """Start a runtime recording ``calls`` calls and SIGKILL it after a random number of
    entries (at least one in each call)."""
    entries = rng.randint(3, 40)
    process = runtime.start(
        name, "--calls", str(calls), "--entries", "1000", "--pace", "0.02",
        env=processes.settings_env(settings), log_dir=log_dir,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        recorded = runtime.recorded(process)
        if len(recorded.call_ids) == calls and all(
            len(recorded.entries[c]) >= entries for c in recorded.call_ids
        ):
            break
        if time.monotonic() > deadline or not process.alive():
            process.stop()
            raise RuntimeError(
                f"runtime {name} never recorded {entries} entries per call: {process.log()[-2000:]}"
            )
        time.sleep(0.02)
    killed_at = time.time()
    process.kill()
    process.stop()
    return Crash(runtime.recorded(process), killed_at)


def check(
    url: str,
    crashes: list[Crash],
    *,
    flush_seconds: float,
    log: Callable[[str], Any] = print,
) -> CrashCheck:
    result = CrashCheck()
    ids = [c for crash in crashes for c in crash.recorded.call_ids]
    with psycopg.connect(url, autocommit=True) as conn:
        stored = {
            str(row[0]): (row[1], row[2])
            for row in conn.execute(
                "SELECT call_id, status, total_messages FROM calls WHERE call_id = ANY(%s)",
                (ids,),
            ).fetchall()
        }
        contents: dict[str, list[str]] = {c: [] for c in ids}
        for call_id, content in conn.execute(
            "SELECT call_id, content FROM call_messages WHERE call_id = ANY(%s)"
            " ORDER BY call_id, sequence",
            (ids,),
        ).fetchall():
            contents[str(call_id)].append(content)
    for crash in crashes:
        cutoff = crash.killed_at - flush_seconds - SCHEDULING_SLACK
        for call_id in crash.recorded.call_ids:
            result.calls += 1
            recorded = len(crash.recorded.entries[call_id])
            result.entries_recorded += recorded
            if call_id not in stored:
                result.lost += 1
                log(f"soak: crashed call {call_id} is not stored")
                continue
            status, total = stored[call_id]
            kept = contents[call_id]
            result.entries_stored += len(kept)
            prefix = kept == [f"entry {n}" for n in range(len(kept))]
            enough = crash.recorded.before(call_id, cutoff) <= len(kept) <= recorded
            if status == "interrupted" and prefix and enough and total == len(kept):
                result.recovered += 1
            else:
                result.wrong += 1
                log(
                    f"soak: crashed call {call_id} stored {status} with {len(kept)} of "
                    f"{recorded} entries (prefix: {prefix})"
                )
    return result
