"""Python renders values exactly as PostgreSQL does, so both sides of the Azure comparison
compute the same digest of the same call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from worker.azure.values import json_or_text
from worker.consistency.canonical import jsonb_text, micros

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_SLOW = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _pg(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


@_SLOW
@given(_JSON)
def test_jsonb_text_is_what_postgresql_prints(conn: psycopg.Connection[Any], value: Any) -> None:
    """What psycopg stores of a Python value (the migration writes ``Jsonb(value)``)."""
    assert jsonb_text(value) == _pg(conn, "SELECT %s::jsonb::text", Jsonb(value))
    assert jsonb_text([1, value, "x"]) == _pg(
        conn, "SELECT json_build_array(1, %s::jsonb, 'x'::text)::text", Jsonb(value)
    )


@_SLOW
@given(_JSON)
def test_parsed_legacy_json_text_renders_as_stored(
    conn: psycopg.Connection[Any], value: Any
) -> None:
    """Legacy tool requests are JSON text, parsed by the migration before they are stored."""
    parsed, rest = json_or_text(json.dumps(value), "tool_request")
    assert rest is None
    assert jsonb_text(parsed) == _pg(conn, "SELECT %s::jsonb::text", Jsonb(parsed))


@_SLOW
@given(
    _TEXT,
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2090, 1, 1),
        timezones=st.just(UTC),
    ),
    st.booleans() | st.none(),
    st.integers(min_value=0, max_value=2**31 - 1) | st.none(),
)
def test_rows_render_as_json_build_array_prints_them(
    conn: psycopg.Connection[Any], text: str, at: datetime, flag: bool | None, number: int | None
) -> None:
    expected = _pg(
        conn,
        "SELECT json_build_array(%s::int, %s::text, (extract(epoch FROM %s::timestamptz)"
        " * 1000000)::bigint, %s::boolean, %s::text)::text",
        number,
        text,
        at,
        flag,
        None,
    )
    assert jsonb_text([number, text, micros(at), flag, None]) == expected


def test_microseconds_since_the_epoch() -> None:
    at = datetime(2024, 3, 5, 14, 30, 0, 123456, tzinfo=UTC)
    assert micros(at) == 1_709_649_000_123_456
    assert (
        micros(at - timedelta(days=365 * 60)) == 1_709_649_000_123_456 - 365 * 60 * 86_400_000_000
    )
    assert micros(None) is None
