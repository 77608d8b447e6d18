"""The rules of rotation and retention, which are SQL functions (revision 0007): the cutoff, the
months calls hold, the grace period, partition names, and the constants they share with Python.

Rotation, retention and seed 001's runbook functions all ask these functions, so these tests are
the rules' own; ``tests/unit/test_retention_rules.py`` tests the decisions made from them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.base import PARTITIONED_TABLES
from models.payload import MAX_CLOCK_SKEW
from tests.catalog import scalar
from worker.maintenance import expiry
from worker.maintenance.partitions import (
    add_months,
    month_bounds,
    month_start,
    parse_partition_name,
    partition_name,
)
from worker.maintenance.retention_rules import Cutoff
from worker.settings import Settings

DB_EXAMPLES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_the_sql_rules_share_pythons_constants(conn: psycopg.Connection[Any]) -> None:
    assert scalar(conn, "SELECT callstore_max_clock_skew()") == MAX_CLOCK_SKEW
    assert tuple(scalar(conn, "SELECT callstore_partitioned_tables()")) == PARTITIONED_TABLES


def test_the_runbooks_defaults_are_the_settings_defaults(conn: psycopg.Connection[Any]) -> None:
    defaults = Settings.model_fields
    arguments = {
        name: scalar(conn, "SELECT pg_get_function_arguments(%s::regproc)", name)
        for name in ("create_monthly_partitions", "cleanup_old_partitions", "drop_old_partitions")
    }
    premake = defaults["partition_premake_months"].default
    days = defaults["retention_days"].default
    grace = defaults["retention_grace_days"].default
    assert arguments == {
        "create_monthly_partitions": f"months_ahead integer DEFAULT {premake},"
        f" retention_days integer DEFAULT {days}, as_of timestamp with time zone DEFAULT now()",
        "cleanup_old_partitions": f"retention_days integer DEFAULT {days},"
        f" grace_days integer DEFAULT {grace}, as_of timestamp with time zone DEFAULT now()",
        "drop_old_partitions": f"grace_days integer DEFAULT {grace},"
        " as_of timestamp with time zone DEFAULT now()",
    }


# -- names -----------------------------------------------------------------------------------

months = st.dates(min_value=date(1100, 1, 1), max_value=date(9900, 12, 31))


@DB_EXAMPLES
@given(table=st.sampled_from(PARTITIONED_TABLES), day=months)
def test_sql_and_python_name_a_partition_alike(
    conn: psycopg.Connection[Any], table: str, day: date
) -> None:
    name = scalar(conn, "SELECT callstore_partition_name(%s, %s)", table, day)
    assert name == partition_name(table, month_start(day))
    month = scalar(conn, "SELECT callstore_partition_month(%s, %s)", table, name)
    assert (table, month) == parse_partition_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "call_messages",
        "call_messages_2026_13",
        "call_messages_2026_00",
        "call_messages_2026_1",
        "call_messages_26_01",
        "call_messages_2026_01_old",
        "call_messages_2026_01_2",
        "call_messagesx2026_01",
        "call_metrics_2026_01",  # another table's name
        "CALL_MESSAGES_2026_01",
    ],
)
def test_other_names_are_no_month(conn: psycopg.Connection[Any], name: str) -> None:
    assert scalar(conn, "SELECT callstore_partition_month('call_messages', %s)", name) is None
    parsed = parse_partition_name(name)
    assert parsed is None or parsed[0] != "call_messages"


# -- the cutoff ------------------------------------------------------------------------------


def _cutoff(conn: psycopg.Connection[Any], now: datetime, days: int) -> Cutoff | None:
    return expiry.retention_cutoff(conn, now=now, retention_days=days)


def test_zero_days_keeps_everything(conn: psycopg.Connection[Any]) -> None:
    now = datetime(2027, 3, 15, tzinfo=UTC)
    assert _cutoff(conn, now, 0) is None
    assert expiry.first_kept_month(conn, now=now, retention_days=0) is None


def test_a_month_expires_when_it_ends_before_the_cutoff(conn: psycopg.Connection[Any]) -> None:
    found = _cutoff(conn, datetime(2027, 3, 15, 12, tzinfo=UTC), 365)
    assert found is not None
    assert found.calls_before == datetime(2026, 3, 15, 12, tzinfo=UTC)
    # February 2026 ended before the cutoff; March 2026 holds calls that are kept.
    assert found.keep_from == date(2026, 3, 1)


def test_a_month_ending_within_the_clock_skew_of_the_cutoff_is_kept(
    conn: psycopg.Connection[Any],
) -> None:
    # A call that started just after the cutoff may have entries stamped up to an hour before
    # it, in the previous month: that month must stay until such calls are expired too.
    late = _cutoff(conn, datetime(2026, 5, 1, 0, 30, tzinfo=UTC), 30)
    assert late is not None
    assert late.calls_before == datetime(2026, 4, 1, 0, 30, tzinfo=UTC)
    assert late.keep_from == date(2026, 3, 1)  # March ended only 30 minutes before the cutoff
    later = _cutoff(conn, datetime(2026, 5, 1, 1, 0, tzinfo=UTC), 30)
    assert later is not None
    assert later.keep_from == date(2026, 4, 1)


def test_across_a_year_boundary(conn: psycopg.Connection[Any]) -> None:
    # Calls before 2026-01-01 00:30 expire, but December ended only 30 minutes before that.
    early = _cutoff(conn, datetime(2026, 2, 1, 0, 30, tzinfo=UTC), 31)
    assert early is not None and early.keep_from == date(2025, 12, 1)
    later = _cutoff(conn, datetime(2026, 2, 1, 1, 0, tzinfo=UTC), 31)
    assert later is not None and later.keep_from == date(2026, 1, 1)


def test_the_session_time_zone_changes_nothing(conn: psycopg.Connection[Any]) -> None:
    """Months are UTC months whatever the connection's time zone (psql users have theirs)."""
    now = datetime(2026, 5, 1, 0, 30, tzinfo=UTC)
    expected = _cutoff(conn, now, 30)
    for zone in ("Pacific/Auckland", "America/Los_Angeles"):
        conn.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
        assert _cutoff(conn, now, 30) == expected
        assert scalar(conn, "SELECT callstore_first_month_of_call(%s)", now) == date(2026, 4, 1)
        assert scalar(
            conn, "SELECT callstore_partition_name('call_messages', %s)", date(2026, 4, 1)
        ) == ("call_messages_2026_04")


@DB_EXAMPLES
@given(
    now=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    days=st.integers(min_value=1, max_value=3650),
)
def test_no_kept_call_can_own_a_row_in_an_expired_month(
    conn: psycopg.Connection[Any], now: datetime, days: int
) -> None:
    found = _cutoff(conn, now, days)
    assert found is not None
    assert found.calls_before == now - timedelta(days=days)
    last_expired = add_months(found.keep_from, -1)
    # The earliest entry of the earliest kept call is after the last expired month ends ...
    assert found.calls_before - MAX_CLOCK_SKEW >= month_bounds(last_expired)[1]
    # ... and the first kept month is not expired: it ends after that entry.
    assert month_bounds(found.keep_from)[1] > found.calls_before - MAX_CLOCK_SKEW
    # A call that started right at the cutoff holds the first kept month, no earlier one.
    first = scalar(conn, "SELECT callstore_first_month_of_call(%s)", found.calls_before)
    assert first == found.keep_from


def test_rotation_keeps_from_the_first_kept_month(conn: psycopg.Connection[Any]) -> None:
    now = datetime(2027, 1, 10, tzinfo=UTC)
    assert expiry.first_kept_month(conn, now=now, retention_days=365) == date(2026, 1, 1)


# -- the months calls hold, the grace period -------------------------------------------------


def _add_call(conn: psycopg.Connection[Any], started_at: datetime) -> None:
    conn.execute(
        "INSERT INTO calls (call_id, tenant_id, agent_id, status, started_at, revision)"
        " VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'ended', %s, 1)",
        (started_at,),
    )


def test_calls_hold_the_months_they_may_have_rows_in(conn: psycopg.Connection[Any]) -> None:
    assert expiry.months_held_from(conn) is None
    # Started 30 minutes into February: entries may be stamped in January.
    _add_call(conn, datetime(2026, 2, 1, 0, 30, tzinfo=UTC))
    assert expiry.months_held_from(conn) == date(2026, 1, 1)
    # Only calls from ``since`` on count.
    _add_call(conn, datetime(2026, 5, 1, 1, 0, tzinfo=UTC))
    since = datetime(2026, 3, 1, tzinfo=UTC)
    assert expiry.months_held_from(conn, since=since) == date(2026, 5, 1)
    # An hour into the month: no entry can be stamped in the month before.
    conn.execute("DELETE FROM calls WHERE started_at < %s", (since,))
    assert expiry.months_held_from(conn) == date(2026, 5, 1)


def test_the_grace_period_is_whole_days_before_now(conn: psycopg.Connection[Any]) -> None:
    now = datetime(2026, 3, 29, 12, tzinfo=UTC)  # across a daylight-saving change in Europe
    conn.execute("SET TimeZone = 'Europe/Paris'")
    assert expiry.drop_due_before(conn, now=now, grace_days=7) == now - timedelta(days=7)
    assert expiry.drop_due_before(conn, now=now, grace_days=0) == now
