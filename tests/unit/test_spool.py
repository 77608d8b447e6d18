"""The spool keeps every message whole until the broker takes it."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from tests.factories import SentMessages
from worker.client.spool import CORRUPT_DIR, Spool


def test_put_writes_a_whole_file_atomically(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.put("calls.finalize", "calls", [{"call_id": "c1"}], reason="down", key="c1")
    assert path.exists() and path.name.endswith("-c1-" + path.name.split("-")[-1])
    record = json.loads(path.read_text())
    assert record["task"] == "calls.finalize" and record["args"] == [{"call_id": "c1"}]
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [path.name]  # no temp file left
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_flush_sends_oldest_first_and_deletes_only_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(5):
        spool.put("calls.finalize", "calls", [{"n": n}], reason="down", key=f"c{n}")
    send = SentMessages(fail_after=3)
    result = spool.flush(send)
    assert [args[0]["n"] for _, _, args in send.sent] == [0, 1, 2]
    assert result.sent == 3 and result.remaining == 2 and result.broker_error
    assert spool.stats().files == 2
    result = spool.flush(SentMessages())
    assert result.sent == 2 and spool.is_empty()


def test_unreadable_file_is_set_aside_not_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.put("calls.finalize", "calls", [{}], reason="down", key="c")
    path.write_text("{not json")
    result = spool.flush(SentMessages())
    assert result.corrupt == 1 and not path.exists()
    assert (tmp_path / CORRUPT_DIR / path.name).read_text() == "{not json"
    assert spool.stats().corrupt == 1


def test_a_file_locked_by_another_flusher_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.put("calls.finalize", "calls", [{}], reason="down", key="c")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = spool.flush(SentMessages())
        assert result.sent == 0 and result.skipped_locked == 1 and path.exists()
    finally:
        os.close(fd)
    assert spool.flush(SentMessages()).sent == 1


def test_missing_directory_is_an_empty_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "absent")
    assert spool.is_empty() and spool.stats().files == 0 and spool.flush(SentMessages()).sent == 0


def test_put_fails_loudly_when_the_directory_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NotADirectoryError):
        Spool(blocker / "spool").put("t", "q", [], reason="r", key="k")


def _sent(spool: Spool, call_id: str, revision: int = 1) -> Path:
    return spool.record_sent(
        "calls.finalize", "calls", [{"call_id": call_id}], key=call_id, revision=revision
    )


def test_the_outbox_forgets_settled_calls_and_publishes_lost_ones_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    settled_call = "11111111-1111-4111-8111-111111111111"
    lost_call = "22222222-2222-4222-8222-222222222222"
    young_call = "33333333-3333-4333-8333-333333333333"
    now = 10_000.0
    for call_id, age in ((settled_call, 100), (lost_call, 100), (young_call, 5)):
        path = _sent(spool, call_id)
        os.utime(path, (now - age, now - age))
    send = SentMessages()
    result = spool.reconcile_sent(
        settled=lambda ids: {settled_call: 1},
        in_flight=lambda ids: set(),
        send=send,
        now=now,
        redeliver_after=60,
    )
    assert (result.settled, result.redelivered, result.waiting) == (1, 1, 1)
    assert [args[0]["call_id"] for _, _, args in send.sent] == [lost_call]
    entries = {e.call_id: e for e in spool.sent_entries()}
    assert set(entries) == {lost_call, young_call}
    assert entries[lost_call].attempts == 1
    # Backoff: a second redelivery waits twice as long (120 s), the young call its first 60 s.
    again = spool.reconcile_sent(
        settled=lambda ids: {},
        in_flight=lambda ids: set(),
        send=send,
        now=now + 100,
        redeliver_after=60,
    )
    assert again.redelivered == 1 and send.sent[-1][2][0]["call_id"] == young_call
    later = spool.reconcile_sent(
        settled=lambda ids: {},
        in_flight=lambda ids: set(),
        send=send,
        now=now + 121,
        redeliver_after=60,
    )
    assert later.redelivered == 1 and send.sent[-1][2][0]["call_id"] == lost_call


def test_the_outbox_leaves_calls_a_worker_holds_and_older_revisions_count_as_unsettled(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    held, newer = "44444444-4444-4444-8444-444444444444", "55555555-5555-4555-8555-555555555555"
    for path in (_sent(spool, held), _sent(spool, newer, revision=3)):
        os.utime(path, (0, 0))
    send = SentMessages()
    result = spool.reconcile_sent(
        settled=lambda ids: {newer: 2},  # revision 2 settled; 3 is not
        in_flight=lambda ids: {held},
        send=send,
        now=1_000.0,
        redeliver_after=60,
    )
    assert result.redelivered == 1 and [a[0]["call_id"] for _, _, a in send.sent] == [newer]
    assert result.waiting == 1
    down = spool.reconcile_sent(
        settled=lambda ids: {}, in_flight=lambda ids: set(), send=SentMessages(fail_after=0),
        now=100_000.0, redeliver_after=60,
    )  # fmt: skip
    assert down.broker_error and len(spool.sent_entries()) == 2
