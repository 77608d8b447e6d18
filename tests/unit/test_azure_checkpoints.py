"""Rounds, passes and watermarks of the migration checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.azure import checkpoints, sources
from worker.azure.checkpoints import Checkpoint
from worker.azure.readers import Page, TableRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fresh() -> dict[str, Checkpoint]:
    return {s.name: Checkpoint(s.name) for s in sources.SOURCES}


def page(*stamps: datetime, done: bool = True) -> Page:
    records = [TableRecord("pk", f"{i:06d}", s, {}) for i, s in enumerate(stamps)]
    return Page(list(records), None if done else {"NextPartitionKey": "x"}, len(records))


def test_a_round_visits_the_sources_in_foreign_key_order() -> None:
    state = fresh()
    assert [s.name for s in checkpoints.due(state)] == [s.name for s in sources.SOURCES]
    for source in sources.SOURCES[:3]:
        state[source.name].start_pass(timedelta(0))
        state[source.name].complete_pass()
    assert [s.name for s in checkpoints.due(state)] == [
        "OrganizationData", "CallHistory", "CallTranscripts",
    ]  # fmt: skip


def test_a_pass_moves_the_watermark_and_the_next_one_overlaps() -> None:
    cp = Checkpoint("CallHistory")
    cp.start_pass(timedelta(minutes=5))
    assert cp.pass_from is None  # the first pass reads everything
    cp.advance(page(T0, T0 + timedelta(seconds=9), done=False))
    cp.advance(page(T0 + timedelta(seconds=3)))
    cp.count(migrated=3, rejected=0)
    cp.complete_pass()
    assert (cp.watermark, cp.passes, cp.last_pass_changed, cp.scanned) == (
        T0 + timedelta(seconds=9), 1, 3, 3,
    )  # fmt: skip
    cp.start_pass(timedelta(minutes=5))
    assert cp.pass_from == T0 + timedelta(seconds=9) - timedelta(minutes=5)
    cp.advance(page())  # nothing newer: the watermark stays
    cp.complete_pass()
    assert cp.watermark == T0 + timedelta(seconds=9)
    assert cp.caught_up


def test_caught_up_needs_a_whole_round_without_changes() -> None:
    state = fresh()
    assert not checkpoints.caught_up(state)
    for cp in state.values():
        cp.start_pass(timedelta(0))
        cp.complete_pass()
    assert checkpoints.caught_up(state)
    state["CallTranscripts"].start_pass(timedelta(0))  # a pass under way
    assert not checkpoints.caught_up(state)
