"""Durable writes: a file is replaced whole or not at all."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from worker.durable import (
    STALE_TEMPORARY_SECONDS,
    atomic_writer,
    sweep_temporaries,
    temporary_path,
    write_atomically,
)


def test_a_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    write_atomically(path, b"first")
    write_atomically(path, b"second", mode=0o600)
    assert path.read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]


def test_a_new_file_gets_the_mode_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    write_atomically(path, b"x", mode=0o600, fsync=False)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "export.gz"
    path.write_bytes(b"old")

    def fail_halfway() -> None:
        with atomic_writer(path) as handle:
            handle.write(b"half of the n")
            assert temporary_path(path).exists()
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        fail_halfway()
    assert path.read_bytes() == b"old"
    assert not temporary_path(path).exists()


def test_a_temporary_left_by_a_killed_writer_is_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "export.gz"
    temporary_path(path).write_bytes(b"a killed run's partial bytes, longer than the new ones")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert not temporary_path(path).exists()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_sweep_removes_old_temporaries_whose_writer_is_gone(tmp_path: Path) -> None:
    stale = temporary_path(tmp_path / "crashed.json")
    stale.write_bytes(b"half of a ca")
    _age(stale, STALE_TEMPORARY_SECONDS + 1)
    fresh = temporary_path(tmp_path / "being-written.json")
    fresh.write_bytes(b"just opened")
    kept = tmp_path / "whole.json"
    kept.write_bytes(b"{}")
    _age(kept, 3600)
    hidden = tmp_path / ".not-a-temporary"
    hidden.write_bytes(b"x")
    _age(hidden, 3600)

    assert sweep_temporaries(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name, kept.name, hidden.name]
    )
    assert sweep_temporaries(tmp_path / "missing") == 0


def test_a_sweep_leaves_the_temporary_of_a_live_writer_however_old(tmp_path: Path) -> None:
    path = tmp_path / "slow.json"
    with atomic_writer(path) as handle:
        handle.write(b"a writer stalled on a slow disk")
        handle.flush()
        _age(temporary_path(path), 3600)
        assert sweep_temporaries(tmp_path) == 0, "its writer holds the lock"
    assert path.read_bytes() == b"a writer stalled on a slow disk"
