"""A call's times are checked, and its partitions found, from the earliest and the latest
timestamp of its entries: the same answers as going through every entry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.payload import TIMELINE_FIELDS, CallPayload
from tests import factories
from tests.strategies import message_entries
from worker.calls.finalize import PARTITIONED_FIELDS, partition_months
from worker.calls.validation import ClockWindow
from worker.errors import PayloadInvalid
from worker.maintenance.partitions import month_start

#: The first of a month: a call that starts the evening before crosses into it.
NEW_MONTH = datetime(2026, 3, 1, tzinfo=UTC)


def _every_month(payload: CallPayload) -> set[date]:
    months: set[date] = set()
    for name in PARTITIONED_FIELDS:
        months.update(month_start(entry.timestamp) for entry in getattr(payload, name))
    return months


def _payload(entries: list[dict[str, Any]], start: datetime) -> CallPayload:
    body = factories.small_payload(1, start=start)
    unique = {entry["sequence"]: entry for entry in entries}
    body["messages"] = list(unique.values())
    body["transitions"] = body["metrics"] = []
    return CallPayload.model_validate(body)


@settings(max_examples=60)
@given(st.lists(message_entries(start=NEW_MONTH - timedelta(hours=20)), max_size=12))
def test_partition_months_are_the_months_of_the_entries(entries: list[dict[str, Any]]) -> None:
    payload = _payload(entries, NEW_MONTH - timedelta(hours=20))
    assert partition_months(payload) == _every_month(payload)


def test_the_range_of_a_payload_built_without_validation_is_still_found() -> None:
    valid = CallPayload.model_validate(factories.payload(2))
    built = CallPayload.model_construct(**dict(valid))
    assert built.stamp_range(TIMELINE_FIELDS) == valid.stamp_range(TIMELINE_FIELDS) is not None
    assert partition_months(built) == _every_month(valid)


def test_an_empty_timeline_has_no_range_and_no_partition() -> None:
    body = factories.small_payload(3)
    for name in TIMELINE_FIELDS:
        body[name] = []
    payload = CallPayload.model_validate(body)
    assert payload.stamp_range(TIMELINE_FIELDS) is None and partition_months(payload) == set()


@pytest.mark.parametrize("index", [0, 3, -1])
def test_the_clock_window_still_names_the_entry_outside_it(index: int) -> None:
    body = factories.payload(4)
    started = datetime.fromisoformat(body["started_at"])
    body["metrics"][index]["timestamp"] = (started - timedelta(minutes=30)).isoformat()
    payload = CallPayload.model_validate(body)
    window = ClockWindow(started - timedelta(minutes=10), started + timedelta(days=9), 30, 300)
    position = index % len(payload.metrics)
    with pytest.raises(PayloadInvalid, match=rf"^metrics\[{position}\]\.timestamp"):
        window.check(payload)
    ClockWindow(started - timedelta(minutes=31), window.latest, 30, 300).check(payload)
