"""The local spool: where a finalized call waits when the broker cannot take it.

A spooled message is a file written the way databases write their logs: to a temporary name,
``fsync``-ed, renamed into place atomically and the directory ``fsync``-ed, so after a crash a
file is either whole or absent. ``flush`` re-publishes the files in age order and deletes each
only after the broker accepted it; two flushers at once (the recorder and ``callstore spool
flush``) skip each other's files through an advisory ``flock``. A file that cannot be read back
is moved to ``corrupt/`` where an operator sees it; it is never deleted.

The spool lives on the runtime's host; it needs no database and no worker code.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.errors import BrokerUnavailable

SUFFIX = ".json"
CORRUPT_DIR = "corrupt"

#: ``send(task_name, queue, args) -> task id``; raises ``BrokerUnavailable`` when it cannot.
Send = Callable[[str, str, list[Any]], str]


@dataclass(frozen=True, slots=True)
class SpoolStats:
    files: int
    oldest_age_seconds: float | None
    corrupt: int


@dataclass(slots=True)
class FlushResult:
    sent: int = 0
    skipped_locked: int = 0
    corrupt: int = 0
    remaining: int = 0
    broker_error: str | None = None
    task_ids: list[str] = field(default_factory=list)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A directory of messages that could not be published yet."""

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
        data = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
        name = f"{time.time_ns():020d}-{key}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(final)
        _fsync_dir(self.directory)
        return final

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
        return SpoolStats(files=len(paths), oldest_age_seconds=oldest, corrupt=corrupt)

    @contextlib.contextmanager
    def _claimed(self, path: Path) -> Iterator[int | None]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield fd
        finally:
            os.close(fd)

    def _set_aside(self, path: Path) -> None:
        corrupt_dir = self.directory / CORRUPT_DIR
        corrupt_dir.mkdir(exist_ok=True, mode=0o700)
        path.replace(corrupt_dir / path.name)
        _fsync_dir(self.directory)

    def flush(self, send: Send, *, limit: int | None = None) -> FlushResult:
        """Publish spooled messages oldest first; stop at the first broker failure."""
        result = FlushResult()
        paths = self.paths()
        for index, path in enumerate(paths):
            if limit is not None and result.sent >= limit:
                result.remaining = len(paths) - index
                break
            with self._claimed(path) as fd:
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
            _fsync_dir(self.directory)
        return result
