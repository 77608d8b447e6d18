"""A voice runtime in a process of its own, for the tests and the soak to kill.

``python -m worker.dev.runtime --calls N --entries M --pace S [--finalize] [--after-orphans]``

It records ``N`` calls at once through ``CallRecorder``, as a runtime does (settings from the
environment, the real clock), one entry per call every ``S`` seconds (until ``--until FILE`` exists): message ``n`` of a call
reads ``entry n``. After each entry it prints a JSON line saying what it recorded and when, so a
parent that SIGKILLs it knows exactly what was recorded before the kill. ``--finalize`` ends
the calls normally; ``--after-orphans`` first waits until no orphaned journal is left in the spool
(this process's drainer recovers them: a runtime restarted after a crash).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.client.journal import list_journals
from worker.client.recorder import CallRecorder
from worker.dev import processes
from worker.settings import get_client_settings


def start(name: str, *args: str, env: Mapping[str, str], log_dir: Path) -> processes.ManagedProcess:
    """This runtime as a process (its own group, so ``kill`` is a crash of the whole of it)."""
    return processes.start(
        name, ["python", "-m", "worker.dev.runtime", *args], env=env, log_dir=log_dir
    )


@dataclass(frozen=True)
class Recorded:
    """What a runtime process said it recorded, per call."""

    call_ids: list[str]
    #: Per call id, the time each entry was recorded (entry ``n`` at index ``n``).
    entries: dict[str, list[float]]
    events: list[dict[str, Any]]

    def before(self, call_id: str, moment: float) -> int:
        """How many entries of the call were recorded by ``moment``."""
        return sum(1 for at in self.entries[call_id] if at <= moment)


def recorded(process: processes.ManagedProcess) -> Recorded:
    events = []
    for line in process.log().splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line cut by the kill
    call_ids = [e["call_id"] for e in events if e["event"] == "started"]
    entries: dict[str, list[float]] = {c: [] for c in call_ids}
    for event in events:
        if event["event"] == "recorded":
            entries[event["call_id"]].append(event["at"])
    return Recorded(call_ids, entries, events)


def say(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "at": time.time(), **fields}) + "\n")
    sys.stdout.flush()


async def one_call(index: int, args: argparse.Namespace) -> None:
    recorder = CallRecorder(
        uuid.uuid4(), uuid.UUID(int=1), uuid.UUID(int=2), agent_name="runtime", announce=False
    )
    say("started", call=index, call_id=str(recorder.call_id))
    recorder.initial_node = "start"
    for n in range(args.entries):
        if args.until is not None and args.until.exists():
            break
        role = "user" if n % 2 == 0 else "assistant"
        recorder.record_message(role, f"entry {n}", node_id="start", turn_number=n // 2)
        say("recorded", call=index, call_id=str(recorder.call_id), n=n)
        await asyncio.sleep(args.pace)
    if args.finalize:
        ok = await recorder.finalize_and_write(status="ended")
        say("finalized", call=index, call_id=str(recorder.call_id), ok=ok)


async def wait_for_orphans(timeout: float) -> None:
    """Until this process's drainer has recovered every orphaned journal of the spool."""
    spool_dir = get_client_settings().spool_dir
    deadline = time.monotonic() + timeout
    while any(not j.live for j in list_journals(spool_dir)):
        if time.monotonic() > deadline:
            say("orphans_left")
            return
        await asyncio.sleep(0.1)
    say("orphans_recovered")


async def run(args: argparse.Namespace) -> None:
    calls = [asyncio.create_task(one_call(i, args)) for i in range(args.calls)]
    if args.after_orphans:
        await asyncio.sleep(0)  # the recorders exist: their drainer is starting
        await wait_for_orphans(args.orphan_timeout)
    await asyncio.gather(*calls)
    say("done")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.dev.runtime", description=__doc__)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between entries")
    parser.add_argument("--finalize", action="store_true")
    parser.add_argument(
        "--until", type=Path, help="stop recording (and finalize) once this file exists"
    )
    parser.add_argument("--after-orphans", action="store_true")
    parser.add_argument("--orphan-timeout", type=float, default=60.0)
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
