"""Month arithmetic and partition names: the pure part of worker/maintenance/partitions.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.base import PARTITIONED_TABLES
from worker.maintenance.partitions import (
    add_months,
    month_range,
    month_start,
    parse_partition_name,
    partition_name,
)

# Partitions live in real time: keep the generated months well inside what `date` can hold
# after moving them by the largest shift the tests use (600 months).
months = st.dates(min_value=date(1100, 1, 1), max_value=date(9900, 12, 31)).map(month_start)
tables = st.sampled_from(PARTITIONED_TABLES)


def test_partition_name_is_table_year_month() -> None:
    assert partition_name("call_messages", date(2027, 1, 1)) == "call_messages_2027_01"
    assert partition_name("call_rag_retrievals", date(2026, 12, 1)) == "call_rag_retrievals_2026_12"


@pytest.mark.parametrize(
    "name",
    [
        "call_messages",  # the parent itself
        "call_messages_2026_13",  # no 13th month
        "call_messages_2026_00",
        "call_messages_2026_1",  # month not zero-padded
        "call_messages_26_01",
        "call_messages_2026_01_old",
        "calls_2026_01",  # not a partitioned table
        "call_events_2026_01",
        "CALL_MESSAGES_2026_01",
        "call_messages_2026_01 ",
    ],
)
def test_other_names_are_not_partitions(name: str) -> None:
    assert parse_partition_name(name) is None


@given(tables, months)
def test_parse_inverts_partition_name(table: str, month: date) -> None:
    assert parse_partition_name(partition_name(table, month)) == (table, month)


@given(tables, months, months)
def test_names_sort_like_months(table: str, first: date, second: date) -> None:
    """Zero-padded names sort chronologically, so a listing by name is a listing by month."""
    names = sorted([partition_name(table, first), partition_name(table, second)])
    assert names == [partition_name(table, m) for m in sorted([first, second])]


@pytest.mark.parametrize(
    ("month", "count", "expected"),
    [
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2027, 1, 1), -1, date(2026, 12, 1)),
        (date(2026, 11, 1), 3, date(2027, 2, 1)),
        (date(2026, 3, 1), -15, date(2024, 12, 1)),
        (date(2026, 5, 1), 0, date(2026, 5, 1)),
        (date(2026, 1, 1), 24, date(2028, 1, 1)),
    ],
)
def test_add_months(month: date, count: int, expected: date) -> None:
    assert add_months(month, count) == expected


@given(months, st.integers(min_value=-600, max_value=600))
def test_add_months_moves_by_whole_months(month: date, count: int) -> None:
    moved = add_months(month, count)
    assert moved.day == 1
    assert (moved.year * 12 + moved.month) - (month.year * 12 + month.month) == count
    assert add_months(moved, -count) == month


@given(months, st.integers(min_value=0, max_value=40))
def test_month_range_is_every_month_once_in_order(first: date, span: int) -> None:
    last = add_months(first, span)
    found = month_range(first, last)
    assert len(found) == span + 1
    assert found[0] == first
    assert found[-1] == last
    assert all(add_months(a, 1) == b for a, b in pairwise(found))


def test_month_range_takes_any_day_and_is_empty_when_reversed() -> None:
    assert month_range(date(2026, 11, 30), date(2027, 1, 2)) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]
    assert month_range(date(2027, 1, 1), date(2026, 12, 31)) == []


def test_month_start_takes_datetimes_in_utc() -> None:
    paris_new_year = datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert month_start(paris_new_year) == date(2026, 12, 1)  # still December in UTC
    assert month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2026, 12, 1)
    assert month_start(date(2026, 2, 28)) == date(2026, 2, 1)


@given(st.datetimes(timezones=st.timezones()))
def test_month_start_of_an_aware_datetime_is_its_utc_month(moment: datetime) -> None:
    utc = moment.astimezone(UTC)
    assert month_start(moment) == date(utc.year, utc.month, 1)
