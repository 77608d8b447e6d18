"""Writing a file so that after a crash it is either whole or absent; claiming one that several
processes may want (``claimed``).

The way databases write their logs: the bytes go to a temporary name next to the file
(``.<name>.tmp``, hidden from anyone listing the directory for ``*.json`` or ``*.gz``), are
``fsync``-ed, renamed over the final name atomically, and the directory is ``fsync``-ed so the
rename itself survives a power loss. Without ``fsync`` the rename is still atomic — a reader
never sees half a file — but a crash of the host may lose the file: right for data that only
covers a shorter loss window (the spool's outbox).

Standard library only: the voice runtime's client imports it.
"""

from __future__ import annotations

import fcntl
import os
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


def temporary_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def atomic_writer(path: Path, *, fsync: bool = True, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the block ends without an error.

    ``mode`` is the new file's permissions (before the umask). On an error the temporary file
    is removed and ``path`` is left as it was.
    """
    temporary = temporary_path(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


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
