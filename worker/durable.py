"""Writing a file so that after a crash it is either whole or absent; claiming one that several
processes may want (``claimed``).

The way databases write their logs: the bytes go to a temporary name next to the file
(``.<name>.tmp``, hidden from anyone listing the directory for ``*.json`` or ``*.gz``), are
``fsync``-ed, renamed over the final name atomically, and the directory is ``fsync``-ed so the
rename itself survives a power loss. Without ``fsync`` the rename is still atomic — a reader
never sees half a file — but a crash of the host may lose the file: right for data that only
covers a shorter loss window (the spool's outbox).

A writer killed in the middle (a crash, the kernel's ``SIGXFSZ``) leaves its temporary behind;
in a directory of uniquely named files (the spool) nothing would ever overwrite it, and a full
disk would fill further with partial files. The writer holds an advisory ``flock`` on its
temporary until the rename, so ``sweep_temporaries`` can tell a dead writer's leftovers (old,
unlocked) from a write in progress.

Standard library only: the voice runtime's client imports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make renames and deletions in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: A temporary untouched this long whose writer holds no lock was left by a dead writer. The
#: age covers the instants a live writer does not hold its lock yet (between open and flock).
STALE_TEMPORARY_SECONDS = 60.0
_TEMPORARY_PREFIX, _TEMPORARY_SUFFIX = ".", ".tmp"


def temporary_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place."""
    return path.with_name(f"{_TEMPORARY_PREFIX}{path.name}{_TEMPORARY_SUFFIX}")


@contextmanager
def atomic_writer(path: Path, *, fsync: bool = True, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the block ends without an error.

    ``mode`` is the new file's permissions (before the umask). On an error (a full disk
    included) the temporary file is removed and ``path`` is left as it was.
    """
    temporary = temporary_path(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            with contextlib.suppress(OSError):  # a marker for sweepers, never a reason to fail
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
            temporary.replace(path)  # still locked: never swept between write and rename
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def _remove_if_abandoned(path: Path) -> bool:
    """Remove the temporary at ``path`` unless a process holds its lock (a live writer)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # gone already, or another user's: not ours to judge
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def sweep_temporaries(
    directory: Path, *, older_than: float = STALE_TEMPORARY_SECONDS, now: float | None = None
) -> int:
    """Remove the temporaries dead writers left in ``directory``; how many were removed."""
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(_TEMPORARY_PREFIX) and name.endswith(_TEMPORARY_SUFFIX)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                continue
        except FileNotFoundError:
            continue
        if _remove_if_abandoned(Path(entry.path)):
            removed += 1
    if removed:
        fsync_dir(directory)
    return removed


def write_atomically(path: Path, data: bytes, *, fsync: bool = True, mode: int = 0o666) -> None:
    """Write ``data`` to ``path`` whole or not at all (see ``atomic_writer``)."""
    with atomic_writer(path, fsync=fsync, mode=mode) as handle:
        handle.write(data)


@contextmanager
def claimed(path: Path, *, exclusive: bool = True) -> Iterator[int | None]:
    """An open, read-only descriptor of ``path`` with its ``flock`` taken for the block, or None
    when another process holds the lock (or ``path`` went away or was replaced meanwhile).

    How two flushers of a spool skip each other's files, and how a recovery never takes a live
    process's journal: the kernel releases a lock when its process dies, however it dies.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            same = path.stat().st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        yield fd if same else None
    finally:
        os.close(fd)
