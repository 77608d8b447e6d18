"""The per-call journal: written in the background, locked by its live owner, recovered whole
(or up to its damage) once the owner is gone, removed by a successful hand-off."""

from __future__ import annotations

import asyncio
import gc
import json
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

from tests import factories
from tests.factories import SentMessages
from tests.helpers import wait_until
from tests.strategies import RecordingCall, recording_calls, replay
from worker.calls.validation import validate_payload
from worker.client.journal import (
    CORRUPT_DIR,
    encode_record,
    journal_paths,
    list_journals,
    read_records,
)
from worker.client.recorder import CallRecorder
from worker.client.recovery import INTERRUPTED_NOTE, payload_from, recover_orphans
from worker.client.spool import Spool
from worker.settings import Settings


@pytest.fixture(name="settings")
def spool_settings(tmp_path: Path) -> Settings:
    """No broker (publishing fails at once), a spool in the test's directory, quick flushes."""
    return factories.make_settings(
        broker_url=f"redis+socket://{tmp_path}/no-redis.socket",
        spool_dir=tmp_path / "spool",
        journal_flush_seconds=0.05,
        checkpoint_seconds=0,
    )


def _recorder(settings: Settings, **options: Any) -> CallRecorder:
    return CallRecorder(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), settings=settings, announce=False, **options
    )


def _written(settings: Settings, entries: int) -> Path:
    """The one journal, once it holds ``entries`` entries."""

    def holding() -> Path | None:
        for path in journal_paths(settings.spool_dir):
            records = read_records(path.read_bytes()).records
            if sum(r["t"] == "entry" for r in records) >= entries:
                return path
        return None

    found = wait_until(holding, timeout=10, what=f"a journal with {entries} entries")
    assert found is not None
    return found


def _record_call(rec: CallRecorder, messages: int = 3) -> None:
    for n in range(messages):
        rec.record_message("user" if n % 2 == 0 else "assistant", f"line {n}", turn_number=n)
    rec.record_metric("llm_ttfb", 0.2)
    rec.final_node = "end"


def test_records_survive_torn_and_damaged_tails() -> None:
    lines = [encode_record({"t": "entry", "n": n}) for n in range(4)]
    whole = b"".join(lines)
    assert [r["n"] for r in read_records(whole).records] == [0, 1, 2, 3]

    cut = read_records(whole[:-7])  # killed in the middle of writing the last line
    assert [r["n"] for r in cut.records] == [0, 1, 2]
    assert cut.damage == "line 4: cut short" and cut.dropped_lines == 1

    flipped = bytearray(whole)
    flipped[len(lines[0]) + 12] ^= 0x01  # one bit of the second line
    damaged = read_records(bytes(flipped))
    assert [r["n"] for r in damaged.records] == [0]
    assert damaged.damage == "line 2: checksum mismatch"
    assert (damaged.dropped_lines, damaged.dropped_bytes) == (3, len(whole) - len(lines[0]))


def test_a_live_recorders_journal_is_locked_and_never_taken(settings: Settings) -> None:
    rec = _recorder(settings)
    _record_call(rec)
    _written(settings, 4)
    (journal,) = list_journals(settings.spool_dir)
    assert journal.live and journal.call_id == str(rec.call_id)
    result = recover_orphans(Spool(settings.spool_dir), SentMessages())
    assert (result.live, result.recovered) == (1, 0)
    assert journal.path.exists()


def test_a_new_call_is_on_disk_at_once_not_a_flush_interval_later(settings: Settings) -> None:
    """A process that dies right after starting a call still leaves the call behind."""
    slow = settings.model_copy(update={"journal_flush_seconds": 60})
    rec = _recorder(slow)
    (path,) = wait_until(
        lambda: journal_paths(slow.spool_dir), timeout=10, what="the new call's journal"
    )
    (header,) = read_records(path.read_bytes()).records
    assert header["t"] == "call" and header["f"]["call_id"] == str(rec.call_id)
    assert list_journals(slow.spool_dir)[0].live


def test_a_dropped_recorders_journal_is_recovered_as_interrupted(settings: Settings) -> None:
    rec = _recorder(settings)
    _record_call(rec)
    call_id = str(rec.call_id)
    last_build = rec.build_payload()
    del rec
    gc.collect()
    wait_until(
        lambda: [not j.live for j in list_journals(settings.spool_dir)] == [True],
        timeout=10,
        what="the journal to be let go",
    )
    send = SentMessages()
    result = recover_orphans(Spool(settings.spool_dir), send)
    assert (result.recovered, result.spooled, result.call_ids) == (1, 0, [call_id])
    ((task, queue, (payload,)),) = send.sent
    assert (task, queue) == ("calls.finalize", "calls")
    assert payload["status"] == "interrupted" and payload["error_message"] == INTERRUPTED_NOTE
    assert [m["content"] for m in payload["messages"]] == ["line 0", "line 1", "line 2"]
    assert payload["final_node"] == "end" and len(payload["metrics"]) == 1
    assert payload["ended_at"] == payload["metrics"][0]["timestamp"]
    assert payload["revision"] < last_build["revision"]  # built after its last record
    validate_payload(payload, max_bytes=1 << 20)
    assert journal_paths(settings.spool_dir) == []
    assert len(Spool(settings.spool_dir).sent_entries()) == 1  # kept in the outbox


def test_a_journal_cut_mid_write_recovers_its_intact_part_and_says_what_was_dropped(
    settings: Settings,
) -> None:
    rec = _recorder(settings)
    _record_call(rec, messages=5)
    path = _written(settings, 6)
    del rec
    gc.collect()
    wait_until(lambda: not list_journals(settings.spool_dir)[0].live, timeout=10, what="orphan")
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 20])  # the last record, cut
    send = SentMessages(fail_after=0)  # and the broker is down: the call is spooled
    result = recover_orphans(Spool(settings.spool_dir), send)
    assert (result.recovered, result.spooled, result.damaged) == (1, 1, 1)
    (spooled,) = Spool(settings.spool_dir).paths()
    payload = factories.spooled_payload(spooled)
    assert len(payload["messages"]) + len(payload["metrics"]) == 6
    assert payload["final_node"] is None  # set by the record that was cut
    assert "a damaged tail was dropped (line" in payload["error_message"]
    validate_payload(payload, max_bytes=1 << 20)


def test_a_journal_without_a_readable_header_is_set_aside(settings: Settings) -> None:
    directory = settings.spool_dir / "journal"
    directory.mkdir(parents=True)
    path = directory / f"{1:020d}-{uuid.uuid4()}-abcd1234.journal"
    path.write_bytes(b"garbage\n")
    result = recover_orphans(Spool(settings.spool_dir), SentMessages())
    assert result.corrupt == 1 and not path.exists()
    assert (directory / CORRUPT_DIR / path.name).read_bytes() == b"garbage\n"


def test_a_successful_hand_off_removes_the_journal(settings: Settings) -> None:
    rec = _recorder(settings)
    _record_call(rec)
    _written(settings, 4)
    assert asyncio.run(rec.finalize_and_write(status="ended")) is True
    assert rec.delivery == "spooled"
    assert journal_paths(settings.spool_dir) == []


class FullSpool(Spool):
    """A spool on a full disk."""

    def put(self, *args: Any, **kwargs: Any) -> Path:
        raise OSError(28, "No space left on device")


def test_a_finalize_that_could_not_be_handed_off_is_recovered_with_its_status(
    settings: Settings,
) -> None:
    rec = _recorder(settings, spool=FullSpool(settings.spool_dir))
    _record_call(rec)
    _written(settings, 4)
    assert asyncio.run(rec.finalize_and_write(status="error", error_message="boom")) is False
    assert list_journals(settings.spool_dir)[0].live  # still its own, until it is dropped
    del rec
    gc.collect()
    wait_until(lambda: not list_journals(settings.spool_dir)[0].live, timeout=10, what="orphan")
    send = SentMessages()
    recover_orphans(Spool(settings.spool_dir), send)
    payload = send.sent[0][2][0]
    assert (payload["status"], payload["error_message"]) == ("error", "boom")
    assert payload["ended_at"] is not None


def test_a_recovered_journal_outranks_its_checkpoints() -> None:
    header = {"t": "call", "w": 100, "f": {"started_at": "2026-01-01T00:00:00+00:00"}}
    records = [header, {"t": "set", "f": {"final_node": "x"}, "w": 150}, {"t": "checkpoint", "r": 300, "w": 200}]  # fmt: skip
    recovered = payload_from(read_records(b"".join(encode_record(r) for r in records)))
    assert recovered is not None and recovered.payload["revision"] == 301
    assert recovered.payload["final_node"] == "x"


def test_the_journal_line_format_is_checksummed_json() -> None:
    line = encode_record({"t": "entry", "e": {"content": "é"}})
    crc, body = line.rstrip(b"\n").split(b" ", 1)
    assert int(crc, 16) == zlib.crc32(body) and json.loads(body)["e"]["content"] == "é"


@settings(max_examples=60, deadline=None)
@given(calls=recording_calls)
def test_a_journal_replays_to_the_call_its_recorder_holds(calls: list[RecordingCall]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        quiet = factories.make_settings(
            spool_dir=Path(directory) / "spool", journal_flush_seconds=60, checkpoint_seconds=0
        )
        rec = _recorder(quiet)
        replay(rec, calls)
        journal = rec._journal
        assert journal is not None
        journal.flush()
        recovered = payload_from(read_records(journal.path.read_bytes()))
        built = rec.build_payload()
        journal.remove()
    assert recovered is not None
    moments = ("revision", "status", "ended_at", "finalized_at", "error_message")
    assert {k: v for k, v in recovered.payload.items() if k not in moments} == {
        k: v for k, v in built.items() if k not in moments
    }
    assert recovered.payload["status"] == "interrupted"


def test_a_journal_with_a_shorter_interval_is_not_held_to_a_longer_tick(tmp_path: Path) -> None:
    from worker.client.journal import Journal
    from worker.client.keeper import Keeper

    keeper = Keeper()
    slow = Journal(tmp_path / "journal", str(uuid.uuid4()), flush_seconds=60)
    slow.append({"t": "entry", "n": 0})
    keeper.keep(slow)
    wait_until(slow.path.exists, timeout=10, what="the slow journal's first write")
    quick = Journal(tmp_path / "journal", str(uuid.uuid4()), flush_seconds=0.05)
    quick.append({"t": "entry", "n": 0})
    keeper.keep(quick)
    wait_until(quick.path.exists, timeout=10, what="the quick journal's first write")
    quick.append({"t": "entry", "n": 1})  # due within one quick interval, not the slow one's
    wait_until(
        lambda: len(read_records(quick.path.read_bytes()).records) == 2,
        timeout=5,
        what="the quick journal's second record",
    )
    slow.remove()
    quick.remove()
