"""The local spool: where a finalized call waits when the broker cannot take it.

A spooled message is a file written durably (``worker.durable``): after a crash it is either
whole or absent. ``flush`` re-publishes the files in age order and deletes each
only after the broker accepted it; two flushers at once (the recorder and ``callstore spool
flush``) skip each other's files through an advisory ``flock``. A file that cannot be read back
is moved to ``corrupt/`` where an operator sees it; it is never deleted. What a writer killed in
the middle of a write left (a hidden ``.tmp``, never a whole call) is swept by the next flush or
outbox pass, so a full disk does not fill further with partial files.

The spool lives on the runtime's host; it needs no database and no worker code.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.client.encoding import encode_json
from worker.durable import claimed, fsync_dir, sweep_temporaries, write_atomically
from worker.errors import BrokerUnavailable

SUFFIX = ".json"
CORRUPT_DIR = "corrupt"
#: The outbox: calls already published, kept until a worker has settled them.
SENT_DIR = "sent"

#: ``send(task_name, queue, args) -> task id``; raises ``BrokerUnavailable`` when it cannot.
Send = Callable[[str, str, list[Any]], str]


@dataclass(frozen=True, slots=True)
class SpoolStats:
    files: int
    oldest_age_seconds: float | None
    corrupt: int
    #: Published calls not yet settled by a worker (the outbox).
    unsettled: int = 0


@dataclass(slots=True)
class FlushResult:
    sent: int = 0
    skipped_locked: int = 0
    corrupt: int = 0
    remaining: int = 0
    broker_error: str | None = None
    task_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SentEntry:
    """A published call waiting in the outbox for its settlement."""

    path: Path
    call_id: str
    revision: int
    attempts: int

    @classmethod
    def parse(cls, path: Path) -> SentEntry | None:
        """``<ns>-<call id>-r<revision>-a<attempts>.json``, or None for other names."""
        try:
            head, revision, attempts = path.name.removesuffix(SUFFIX).rsplit("-", 2)
            _, call_id = head.split("-", 1)
            return cls(
                path, call_id, int(revision.removeprefix("r")), int(attempts.removeprefix("a"))
            )
        except ValueError:
            return None


@dataclass(slots=True)
class ReconcileResult:
    settled: int = 0
    redelivered: int = 0
    waiting: int = 0
    broker_error: str | None = None


class Spool:
    """A directory of messages that could not be published yet, and the outbox of those that
    were (``sent/``), kept until a worker settles them (``worker.client.settlement``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def put(self, task_name: str, queue: str, args: list[Any], *, reason: str, key: str) -> Path:
        """Write one message durably; ``key`` (e.g. the call id) goes into the file name."""
        self._ensure()
        record = {
            "task": task_name,
            "queue": queue,
            "args": args,
            "reason": reason,
            "spooled_at": datetime.now(UTC).isoformat(),
        }
        data = encode_json(record)
        name = f"{time.time_ns():020d}-{key}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        final = self.directory / name
        write_atomically(final, data, mode=0o600)
        return final

    def record_sent(
        self, task_name: str, queue: str, args: list[Any], *, key: str, revision: int
    ) -> Path:
        """Keep a published call until it is settled.

        Written without ``fsync``: the outbox covers what the broker loses (a Redis host lost
        with its data), not a crash of this host at the same moment, and the hand-off must stay
        fast.
        """
        directory = self.directory / SENT_DIR
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        record = {"task": task_name, "queue": queue, "args": args}
        final = directory / f"{time.time_ns():020d}-{key}-r{revision}-a0{SUFFIX}"
        write_atomically(final, encode_json(record), fsync=False)
        return final

    def sent_entries(self) -> list[SentEntry]:
        """The outbox, oldest first."""
        directory = self.directory / SENT_DIR
        if not directory.is_dir():
            return []
        entries = (SentEntry.parse(p) for p in sorted(directory.glob(f"*{SUFFIX}")))
        return [e for e in entries if e is not None]

    def reconcile_sent(
        self,
        *,
        settled: Callable[[list[str]], dict[str, int]],
        in_flight: Callable[[list[str]], set[str]],
        send: Send,
        now: float,
        redeliver_after: float,
    ) -> ReconcileResult:
        """Forget settled calls; publish again those unsettled for too long.

        A call is published again after ``redeliver_after`` seconds, then after twice that, and
        so on, and never while a worker holds it (running or waiting for a retry), so a call that
        is merely queued behind a backlog costs few duplicates.
        """
        result = ReconcileResult()
        sweep_temporaries(self.directory / SENT_DIR)
        entries = self.sent_entries()
        if not entries:
            return result
        revisions = settled([e.call_id for e in entries])
        pending = []
        for entry in entries:
            if revisions.get(entry.call_id, 0) >= entry.revision:
                entry.path.unlink(missing_ok=True)
                result.settled += 1
            else:
                pending.append(entry)
        due = []
        for entry in pending:
            try:
                age = now - entry.path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age >= redeliver_after * 2**entry.attempts:
                due.append(entry)
            else:
                result.waiting += 1
        held = in_flight([e.call_id for e in due]) if due else set()
        for entry in due:
            if entry.call_id in held:
                result.waiting += 1
                continue
            try:
                record = json.loads(entry.path.read_bytes())
                send(record["task"], record["queue"], record["args"])
            except BrokerUnavailable as error:
                result.broker_error = str(error)
                break
            except (OSError, ValueError, KeyError):
                self._set_aside(entry.path)
                continue
            again = entry.path.with_name(
                f"{entry.path.name.rsplit('-a', 1)[0]}-a{entry.attempts + 1}{SUFFIX}"
            )
            entry.path.replace(again)
            os.utime(again, (now, now))
            result.redelivered += 1
        return result

    def paths(self) -> list[Path]:
        """Spooled messages, oldest first (names start with their nanosecond timestamp)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p for p in self.directory.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")
        )

    def is_empty(self) -> bool:
        if not self.directory.is_dir():
            return True
        with os.scandir(self.directory) as entries:
            return not any(e.name.endswith(SUFFIX) and not e.name.startswith(".") for e in entries)

    def stats(self, *, now: float | None = None) -> SpoolStats:
        paths = self.paths()
        oldest = None
        if paths:
            with contextlib.suppress(FileNotFoundError):
                oldest = max(0.0, (now or time.time()) - paths[0].stat().st_mtime)
        corrupt_dir = self.directory / CORRUPT_DIR
        corrupt = len(list(corrupt_dir.glob(f"*{SUFFIX}"))) if corrupt_dir.is_dir() else 0
        return SpoolStats(
            files=len(paths),
            oldest_age_seconds=oldest,
            corrupt=corrupt,
            unsettled=len(self.sent_entries()),
        )

    def _set_aside(self, path: Path) -> None:
        corrupt_dir = self.directory / CORRUPT_DIR
        if path.parent != self.directory:  # from the outbox
            corrupt_dir = path.parent / CORRUPT_DIR
        corrupt_dir.mkdir(exist_ok=True, mode=0o700)
        path.replace(corrupt_dir / path.name)
        fsync_dir(self.directory)

    def flush(self, send: Send, *, limit: int | None = None) -> FlushResult:
        """Publish spooled messages oldest first; stop at the first broker failure."""
        sweep_temporaries(self.directory)
        result = FlushResult()
        paths = self.paths()
        for index, path in enumerate(paths):
            if limit is not None and result.sent >= limit:
                result.remaining = len(paths) - index
                break
            with claimed(path) as fd:
                if fd is None:
                    if path.exists():
                        result.skipped_locked += 1
                    continue
                if not path.exists():  # another flusher sent and removed it before our lock
                    continue
                try:
                    with os.fdopen(os.dup(fd), "rb") as handle:
                        record = json.loads(handle.read())
                    task, queue, args = record["task"], record["queue"], record["args"]
                except (OSError, ValueError, KeyError, TypeError):
                    self._set_aside(path)
                    result.corrupt += 1
                    continue
                try:
                    result.task_ids.append(send(task, queue, args))
                except BrokerUnavailable as error:
                    result.broker_error = str(error)
                    result.remaining = len(paths) - index
                    break
                path.unlink()
                result.sent += 1
        if result.sent:
            fsync_dir(self.directory)
        return result
