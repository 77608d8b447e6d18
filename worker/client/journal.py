"""The per-call journal: what a call recorded so far, on the runtime's disk, in case its process dies.

Every ``record_*``/``update_*``/``set_*`` of a ``CallRecorder`` appends a record to its call's
journal in memory; the process's keeper thread (``worker.client.keeper``) writes what is pending
every ``CALLSTORE_JOURNAL_FLUSH_SECONDS`` (and ``fdatasync``-s it), so the event loop never waits
on the disk and a crash loses at most that interval. A successful hand-off removes the journal.

The file (``<spool>/journal/<ns>-<call id>-<token>.journal``, one per recorder) is a header
record followed by one record a line, each line ``<crc32 hex> <json>\\n``. A line cut by a
kill in the middle of a write, or damaged later, fails its checksum: reading stops there and
everything before it is kept, with what was dropped said (``read_records``).

Ownership is a lock, not a PID: the recorder's process holds an exclusive ``flock`` on its
journal from the moment the file exists (it is created under a hidden name, locked, then
renamed into place). The kernel releases the lock when the process dies, however it dies; a
journal nobody holds is orphaned and is recovered (``worker.client.recovery``). A PID could be
reused by another process, and says nothing across hosts sharing a volume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.client.encoding import encode_json
from worker.durable import fsync_dir, temporary_path

logger = logging.getLogger("callstore.journal")

DIRECTORY = "journal"
SUFFIX = ".journal"
CORRUPT_DIR = "corrupt"

#: Record kinds: the call's identity (first line), an entry of a timeline list, call-level
#: fields set, a checkpoint handed off, and a finalize the runtime asked for.
HEADER, ENTRY, SET, CHECKPOINT, FINAL = "call", "entry", "set", "checkpoint", "final"


def directory_of(spool_dir: Path) -> Path:
    return Path(spool_dir) / DIRECTORY


def wall_us() -> int:
    """Microseconds since the Unix epoch, by the real clock (never a call's simulated one)."""
    return time.time_ns() // 1000


def encode_record(record: dict[str, Any]) -> bytes:
    body = encode_json(record)
    return b"%08x %b\n" % (zlib.crc32(body), body)


@dataclass(slots=True)
class JournalRead:
    """The intact records of a journal, and what was dropped after the first damaged line."""

    records: list[dict[str, Any]] = field(default_factory=list)
    dropped_bytes: int = 0
    dropped_lines: int = 0
    damage: str | None = None


def read_records(data: bytes) -> JournalRead:
    """Records up to the first line that is cut short or fails its checksum."""
    read = JournalRead()
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line = data[offset:] if end < 0 else data[offset:end]
        problem = None
        if end < 0:
            problem = "cut short"
        elif len(line) < 10 or line[8:9] != b" ":
            problem = "not a journal line"
        else:
            body = line[9:]
            try:
                if int(line[:8], 16) != zlib.crc32(body):
                    problem = "checksum mismatch"
                else:
                    record = json.loads(body)
                    if not isinstance(record, dict) or "t" not in record:
                        problem = "not a record"
            except ValueError:
                problem = "unreadable"
        if problem is not None:
            rest = data[offset:]
            read.dropped_bytes = len(rest)
            read.dropped_lines = rest.count(b"\n") + (0 if rest.endswith(b"\n") else 1)
            read.damage = f"line {len(read.records) + 1}: {problem}"
            return read
        read.records.append(record)
        offset = end + 1
    return read


class Journal:
    """One recorder's journal. ``append`` is the only method the event loop calls (a deque
    append); the keeper thread writes (``flush``), the hand-off removes it (``remove``)."""

    def __init__(self, directory: Path, call_id: str, *, flush_seconds: float) -> None:
        self.directory = directory
        self.path = directory / f"{time.time_ns():020d}-{call_id}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.flush_seconds = flush_seconds
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._written = 0
        self._closed = False
        self._abandoned = False
        self._failing = False

    def append(self, record: dict[str, Any]) -> None:
        """Queue ``record`` for the next flush: the caller's thread never touches the disk."""
        self._pending.append(record)

    @property
    def closed(self) -> bool:
        return self._closed

    def flush(self) -> None:
        """Write what is pending (creating and locking the file the first time). On a write
        error the file is cut back to its last whole line and the records wait for next time."""
        with self._lock:
            if self._closed:
                return
            if self._pending:
                self._write_pending()
            if self._abandoned:
                self._close()

    def _write_pending(self) -> None:
        records = [self._pending.popleft() for _ in range(len(self._pending))]
        data = b"".join(encode_record(r) for r in records)
        try:
            if self._fd is None:
                self._create(data)
            else:
                _write_all(self._fd, data)
                os.fdatasync(self._fd)
        except OSError as error:
            self._pending.extendleft(reversed(records))
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._written)
            if not self._failing:
                logger.warning(
                    "call journal not written; retrying",
                    extra={"journal": str(self.path), "journal_error": str(error)},
                )
            self._failing = True
            return
        self._written += len(data)
        self._failing = False

    def _create(self, data: bytes) -> None:
        """Write the first records under a hidden name, lock, then rename into place: a file
        with the journal's name is locked by its owner from its first instant."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        hidden = temporary_path(self.path)
        fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, data)
            os.fdatasync(fd)
            hidden.replace(self.path)
        except BaseException:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        self._fd = fd
        fsync_dir(self.directory)

    def remove(self) -> None:
        """The call is safe elsewhere (enqueued or spooled): forget it. The file is unlinked
        before its lock is released, so nobody can take it for an orphan in between."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            if self._fd is not None:
                self.path.unlink(missing_ok=True)
                self._close()

    def abandon(self) -> None:
        """The recorder is gone without a hand-off: the keeper writes what is pending and lets
        go of the file, which is then an orphan to recover. Cheap: it may run inside the
        garbage collector on the event loop's thread."""
        self._abandoned = True

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def _close(self) -> None:
        self._closed = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor without touching the file, so the
        parent's lock does not outlive the parent through the child."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._closed = True
        self._lock = threading.Lock()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- the journals on disk, seen from outside ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalFile:
    """A journal on disk: its call, whether a live process holds it, and how old it is."""

    path: Path
    call_id: str
    live: bool
    age_seconds: float


def journal_paths(spool_dir: Path) -> list[Path]:
    """Journals of the spool, oldest first (names start with their creation time)."""
    directory = directory_of(spool_dir)
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")
    )


def call_id_of(path: Path) -> str:
    """The call id in a journal's name (``<ns>-<call id>-<token>.journal``)."""
    return path.name.removesuffix(SUFFIX).split("-", 1)[-1].rsplit("-", 1)[0]


def created_at(path: Path) -> float | None:
    """When the journal was created (its name's timestamp), in seconds since the epoch."""
    head = path.name.split("-", 1)[0]
    return int(head) / 1e9 if head.isdigit() else None


def is_live(path: Path) -> bool | None:
    """True when a live process holds the journal, False when nobody does, None when gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def list_journals(spool_dir: Path, *, now: float | None = None) -> list[JournalFile]:
    """Every journal of the spool with its state, oldest first."""
    now = time.time() if now is None else now
    found = []
    for path in journal_paths(spool_dir):
        live = is_live(path)
        if live is None:
            continue
        born = created_at(path)
        if born is None:
            try:
                born = path.stat().st_mtime
            except FileNotFoundError:
                continue
        found.append(JournalFile(path, call_id_of(path), live, max(0.0, now - born)))
    return found
