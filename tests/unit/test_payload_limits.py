"""The contract refuses first, naming the field, what PostgreSQL or the worker's recursion would
refuse later; and the worker holds a call's times against its own clock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.payload import MAX_JSON_DEPTH, CallPayload
from tests import factories
from worker.calls.messages import MESSAGE_DEPTH_LIMIT, json_deeper_than, single_payload
from worker.calls.validation import ClockWindow, validate_payload
from worker.errors import PayloadInvalid

MAX = 16 * 1024 * 1024
NOW = factories.DEFAULT_START + timedelta(days=1)


def _nested(depth: int) -> Any:
    value: Any = 1
    for index in range(depth):
        value = [value] if index % 2 else {"k": value}
    return value


def _event(body: dict[str, Any], data: Any) -> dict[str, Any]:
    body["events"] = [
        {"sequence": 1, "timestamp": body["started_at"], "event_type": "x", "event_data": data}
    ]
    return body


def test_a_json_field_may_nest_max_json_depth_levels() -> None:
    assert MAX_JSON_DEPTH == 64
    validate_payload(_event(factories.small_payload(1), _nested(64)), max_bytes=MAX)


@pytest.mark.parametrize(
    "place",
    ["events.0.event_data", "tool_executions.0.response", "analysis.analysis_data"],
)
def test_a_json_field_nested_deeper_is_refused_naming_it(place: str) -> None:
    body = factories.small_payload(2)
    deep = _nested(65)
    if place.startswith("events"):
        _event(body, deep)
    elif place.startswith("tool"):
        body["tool_executions"] = [
            {"sequence": 1, "timestamp": body["started_at"], "tool_name": "t", "response": deep}
        ]
    else:
        body["analysis"] = {"analysis_data": {"tree": deep}}
    with pytest.raises(PayloadInvalid, match=rf"{place}.*nested more than 64 levels"):
        validate_payload(body, max_bytes=MAX)


def test_json_nested_past_pydantics_encoder_is_refused_not_raised() -> None:
    with pytest.raises(PayloadInvalid, match="nested more than 64 levels deep"):
        validate_payload(_event(factories.small_payload(3), _nested(400)), max_bytes=MAX)


def test_a_lone_surrogate_is_refused_naming_the_field() -> None:
    body = factories.small_payload(4)
    body["messages"][2]["content"] = "split emoji \ud83d"
    with pytest.raises(PayloadInvalid, match=r"messages\[2\]\.content: holds a lone UTF-16"):
        validate_payload(body, max_bytes=MAX)


def test_message_depth_is_measured_on_the_bytes() -> None:
    assert not json_deeper_than(b"[" * MESSAGE_DEPTH_LIMIT + b"]" * MESSAGE_DEPTH_LIMIT, 70)
    assert json_deeper_than(b"[" * 71 + b"]" * 71, 70)
    assert not json_deeper_than(b'{"a": "[[[[[[[[\\"[[[["}', 1)  # brackets in strings are text
    assert not json_deeper_than(b'["\\\\", ["x"]]', 2)  # an escaped backslash ends no string


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


_bracketed_text = st.text(st.sampled_from('[]{}"\\ab,:'), max_size=8)
_bracketed_json = st.recursive(
    st.none() | st.integers() | _bracketed_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_bracketed_text, children, max_size=4)
    ),
    max_leaves=20,
)


@given(_bracketed_json, st.booleans())
def test_message_depth_on_the_bytes_is_the_decoded_depth(value: Any, ascii_only: bool) -> None:
    """Strings full of brackets, quotes and backslashes are text, however they are escaped."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = _depth(value)
    assert not json_deeper_than(body, depth)
    assert json_deeper_than(body, depth - 1) == (depth > 0)


@pytest.mark.parametrize(
    ("args", "kwargs", "shape"),
    [
        ([{}, {}], {}, "2 positional"),
        ([{}], {"extra": 1}, "keyword argument"),
        ([], {"payload": {}}, "0 positional"),
        ({}, {}, "as a list"),
    ],
)
def test_any_shape_but_one_payload_is_refused(args: Any, kwargs: Any, shape: str) -> None:
    with pytest.raises(PayloadInvalid, match=shape):
        single_payload(args, kwargs)


def test_a_value_that_rounds_past_its_numeric_column_is_refused() -> None:
    body = factories.payload(5)
    body["rag_retrievals"][0]["processing_time_ms"] = 99_999_999.996
    with pytest.raises(PayloadInvalid, match=r"rag_retrievals\.0\.processing_time_ms"):
        validate_payload(body, max_bytes=MAX)


def test_a_duration_past_its_column_is_refused_naming_ended_at() -> None:
    body = factories.small_payload(6)
    body["ended_at"] = "2200-01-01T00:00:00+00:00"
    with pytest.raises(PayloadInvalid, match="ended_at: the call would last"):
        validate_payload(body, max_bytes=MAX)


def test_an_empty_twilio_sid_is_absent() -> None:
    payload = CallPayload.model_validate(factories.small_payload(7, twilio_call_sid=""))
    assert payload.twilio_call_sid is None


@pytest.mark.parametrize("field", ["messages", "transitions", "tool_executions", "events"])
def test_a_repeated_sequence_is_refused_naming_both_entries(field: str) -> None:
    body = factories.payload(8)
    stamp = body["started_at"]
    entries = {
        "messages": {"sequence": 1, "timestamp": stamp, "role": "user", "content": "x"},
        "transitions": {"sequence": 1, "timestamp": stamp, "to_node_id": "n"},
        "tool_executions": {"sequence": 1, "timestamp": stamp, "tool_name": "t"},
        "events": {"sequence": 1, "timestamp": stamp, "event_type": "e"},
    }
    body[field] = [entries[field], dict(entries[field])]
    with pytest.raises(PayloadInvalid, match=rf"{field}\[1\]\.sequence 1 repeats {field}\[0\]"):
        validate_payload(body, max_bytes=MAX)


@pytest.mark.parametrize("year", [1, 9999])
def test_the_ends_of_the_calendar_are_refused_inside_validation(year: int) -> None:
    body = factories.small_payload(9)
    stamp = datetime(year, 1 if year == 1 else 12, 1 if year == 1 else 31, tzinfo=UTC)
    body["started_at"] = stamp.isoformat()
    with pytest.raises(PayloadInvalid, match="started_at"):
        validate_payload(body, max_bytes=MAX)


WINDOW = ClockWindow.around(NOW, retention_days=365, skew_seconds=3600)


@pytest.mark.parametrize(
    ("start", "words"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), "older than the 365 days retention keeps"),
        (datetime(2200, 1, 1, tzinfo=UTC), "more than 3600 s ahead of this worker's clock"),
    ],
)
def test_times_outside_the_workers_window_are_refused_naming_the_field(
    start: datetime, words: str
) -> None:
    body = factories.small_payload(10, start=start)
    with pytest.raises(PayloadInvalid, match=f"started_at {re.escape(start.isoformat())}.*{words}"):
        validate_payload(body, max_bytes=MAX, window=WINDOW)


def test_an_entry_ahead_of_the_worker_is_refused_naming_it() -> None:
    body = factories.small_payload(11, start=NOW - timedelta(minutes=30))
    body["events"] = [
        {"sequence": 1, "timestamp": (NOW + timedelta(hours=3)).isoformat(), "event_type": "e"}
    ]
    with pytest.raises(PayloadInvalid, match=r"events\[0\]\.timestamp"):
        validate_payload(body, max_bytes=MAX, window=WINDOW)


def test_retention_off_still_bounds_the_past() -> None:
    window = ClockWindow.around(NOW, retention_days=0, skew_seconds=60)
    validate_payload(
        factories.small_payload(12, start=datetime(1950, 1, 2, tzinfo=UTC)),
        max_bytes=MAX,
        window=window,
    )
    with pytest.raises(PayloadInvalid, match="started_at 0001"):
        validate_payload(
            factories.small_payload(12, start=datetime(1, 1, 2, tzinfo=UTC)),
            max_bytes=MAX,
            window=window,
        )
