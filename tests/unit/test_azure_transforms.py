"""The transforms, one record at a time (no Azure, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from models.enums import CallStatus
from worker.azure import sources
from worker.azure.readers import BlobRecord, TableRecord
from worker.azure.transforms import (
    STATUS_MAP,
    TRANSFORMS,
    CallRow,
    EntryRow,
    OrganizationRow,
    PromptRow,
    TacticRow,
    call,
    derived_archetype,
    transform_page,
)
from worker.azure.values import Unmigratable

SID = "CA" + "ab" * 16
STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def entity(pk: str, rk: str, **properties: Any) -> TableRecord:
    return TableRecord(pk, rk, STAMP, properties)


def blob(name: str, body: bytes, **metadata: str) -> BlobRecord:
    return BlobRecord(name, STAMP, body, metadata)


def test_every_legacy_status_maps_onto_a_call_store_status() -> None:
    assert set(STATUS_MAP) == {"in_progress", "completed", "failed", "no_answer"}
    assert set(STATUS_MAP.values()) <= {s.value for s in CallStatus}


def test_a_call_with_only_a_start() -> None:
    row = call(entity("cust-1", SID, start_time="2024-01-01T00:00:00"))
    assert isinstance(row, CallRow)
    assert (row.call_type, row.direction, row.status) == ("real_call", "outbound", "ended")
    assert (row.ended_at, row.duration_seconds) == (None, None)
    assert row.extra == {"legacy_status": "completed"}


@pytest.mark.parametrize(
    ("partition_key", "row_key", "properties", "reason"),
    [
        ("cust-1", SID, {}, "start_time is missing"),
        ("cust-1", SID, {"start_time": "yesterday"}, "not an ISO-8601 time"),
        ("cust-1", SID, {"start_time": 1700000000}, "not a time"),
        ("cust-1", "CA-not-a-sid", {"start_time": "2024-01-01"}, "not a call SID"),
        ("", SID, {"start_time": "2024-01-01"}, "PartitionKey is empty"),
    ],
)
def test_only_an_unreadable_key_or_start_time_rejects_a_call(
    partition_key: str, row_key: str, properties: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Unmigratable, match=reason):
        call(entity(partition_key, row_key, **properties))


def _odd(properties: dict[str, Any]) -> CallRow:
    row = call(entity("cust-1", SID, start_time="2024-01-02T00:00:00", **properties))
    assert isinstance(row, CallRow)
    return row


@pytest.mark.parametrize(
    ("properties", "column", "stored", "problem"),
    [
        ({"end_time": "2024-01-01T23:50:00"}, "ended_at", None, "600 s before start_time"),
        ({"end_time": "soon"}, "ended_at", None, "not an ISO-8601 time"),
        ({"end_time": 5}, "ended_at", None, "not a time"),
        ({"status": "busy"}, "status", "ended", "status 'busy' is not one of"),
        ({"status": 3}, "status", "ended", "status is a int"),
        ({"direction": "sideways"}, "direction", "outbound", "'sideways' is not one of"),
        ({"call_type": "demo"}, "call_type", "real_call", "'demo' is not one of"),
        ({"duration_seconds": "-5"}, "duration_seconds", None, "negative"),
        ({"duration_seconds": "ten"}, "duration_seconds", None, "not a number"),
        ({"outcome": "x" * 101}, "outcome", "x" * 100, "at most 100"),
        ({"conversation_id": 12345}, "conversation_id", "12345", "not a string"),
        ({"agent_name": "Al\x00ex"}, "agent_name", "Alex", "NUL"),
        ({"organization_id": "o" * 300}, "organization_key", None, "at most 255"),
        ({"behavioral_tactic": 7}, "tactic_name", None, "not a string"),
    ],
)
def test_any_other_odd_field_is_kept_and_recorded(
    properties: dict[str, Any], column: str, stored: Any, problem: str
) -> None:
    row = _odd(properties)
    assert getattr(row, column) == stored
    (name,) = properties
    oddity = row.extra["legacy_oddities"][name]
    assert problem in oddity["problem"]
    value = properties[name]
    assert oddity["value"] == (
        value.replace("\x00", "\\u0000") if isinstance(value, str) else value
    )
    assert row.oddities == (name,)


def test_a_call_with_several_oddities_keeps_its_customer_direction_and_outcome() -> None:
    row = _odd({"status": "Completed ", "direction": "inbound", "outcome": "payment_arranged",
                "duration_seconds": -3, "end_time": "2024-01-02T00:02:05",
                "note": "bad \x00 byte"})  # fmt: skip
    assert (row.legacy_customer_id, row.direction, row.outcome) == (
        "cust-1", "inbound", "payment_arranged",
    )  # fmt: skip
    assert (row.status, row.extra["legacy_status"]) == ("ended", "completed")
    assert row.duration_seconds == 125  # derived from the times, as when it is missing
    assert row.extra["note"] == "bad \\u0000 byte"
    assert sorted(row.oddities) == ["duration_seconds", "note", "status"]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2024, 1, 2, 0, 0, 0, 600_000, tzinfo=UTC), "2024-01-02T00:00:00"),
        (datetime(2024, 1, 2, 0, 0, 1, tzinfo=UTC), "2024-01-02T00:00:00Z"),
        ("2024-01-02T00:00:00.999999", datetime(2024, 1, 2, tzinfo=UTC)),
    ],
)
def test_an_end_up_to_one_second_before_the_start_is_the_same_instant(start: Any, end: Any) -> None:
    row = call(entity("cust-1", SID, start_time=start, end_time=end))
    assert isinstance(row, CallRow)
    assert (row.ended_at, row.duration_seconds) == (row.started_at, 0)
    assert "legacy_oddities" not in row.extra
    assert row.oddities == ()


def test_an_end_just_over_a_second_before_the_start_is_an_oddity() -> None:
    row = call(entity("cust-1", SID, start_time="2024-01-02T00:00:01.000001",
                      end_time="2024-01-02T00:00:00"))  # fmt: skip
    assert isinstance(row, CallRow)
    assert (row.ended_at, row.duration_seconds) == (None, None)
    assert "1.000001 s before start_time" in row.extra["legacy_oddities"]["end_time"]["problem"]


def test_the_same_sid_is_the_same_call_id() -> None:
    first = call(entity("a", SID, start_time="2024-01-01"))
    second = call(entity("b", SID, start_time="2024-01-01"))
    assert isinstance(first, CallRow)
    assert isinstance(second, CallRow)
    assert first.call_id == second.call_id


def test_transcript_entry_kinds() -> None:
    convert = TRANSFORMS[sources.CALL_TRANSCRIPTS.name]
    message = convert(entity(SID, "000003", timestamp=STAMP, speaker="system"))
    assert isinstance(message, EntryRow)
    assert (message.kind, message.role, message.content, message.sequence) == (
        "message", "system", "", 3,
    )  # fmt: skip
    tool = convert(entity(SID, "000004", timestamp=STAMP, entry_type="tool", tool_name="t",
                          tool_request='{"a": 1}', tool_response='{"b"', success=True))  # fmt: skip
    assert isinstance(tool, EntryRow)
    assert (tool.request, tool.request_text, tool.response, tool.response_text) == (
        {"a": 1}, None, None, '{"b"',
    )  # fmt: skip
    for properties, reason in (
        ({"entry_type": "note"}, "entry_type 'note'"),
        ({"entry_type": "tool"}, "tool_name is missing"),
        ({"entry_type": "event"}, "event_type is missing"),
        ({}, "speaker is missing"),
    ):
        with pytest.raises(Unmigratable, match=reason):
            convert(entity(SID, "000005", timestamp=STAMP, **properties))
    with pytest.raises(Unmigratable, match="not a sequence number"):
        convert(entity(SID, "first", timestamp=STAMP, speaker="agent"))


def test_organization_members_and_settings() -> None:
    convert = TRANSFORMS[sources.ORGANIZATIONS.name]
    org = convert(entity("o", "org", name="O", members=json.dumps(
        [{"customer_id": "c1"}, {"customer_id": "c2", "role": "admin"}, {"customer_id": "c1",
         "role": "viewer"}])))  # fmt: skip
    assert isinstance(org, OrganizationRow)
    assert [(m.customer_key, m.role) for m in org.members] == [("c1", "viewer"), ("c2", "admin")]
    for properties, reason in (
        ({"name": "O", "members": "{}"}, "not a JSON array"),
        ({"name": "O", "members": "[1]"}, r"members\[0\] is not an object"),
        ({"name": "O", "settings": "[]"}, "not a JSON object"),
        ({}, "name is missing"),
    ):
        with pytest.raises(Unmigratable, match=reason):
            convert(entity("o", "org", **properties))


def test_behavioral_configs() -> None:
    convert = TRANSFORMS[sources.BEHAVIORAL_CONFIGS.name]
    row = convert(blob("soft_touch.json", b"\xef\xbb\xbf" + json.dumps({"x": 1}).encode()))
    assert isinstance(row, TacticRow)
    assert (row.name, row.archetype, row.config) == ("soft_touch", "Soft Touch", {"x": 1})
    assert derived_archetype("collaborative_problem_solver") == "Collaborative Problem Solver"
    for name, body, reason in (
        ("a.json", b"[1]", "JSON list, not an object"),
        ("a.json", b"{", "not valid JSON"),
        ("a.yaml", b"{}", "not <name>.json"),
        ("a.json", b'{"x": NaN}', "not valid JSON"),
    ):
        with pytest.raises(Unmigratable, match=reason):
            convert(blob(name, body))


def test_prompts() -> None:
    convert = TRANSFORMS[sources.PROMPTS.name]
    row = convert(blob("p.txt", b"Hi {{name}}, {{ balance }} {{name}}", Environment="staging"))
    assert isinstance(row, PromptRow)
    assert (row.name, row.environment) == ("p", "staging")
    assert row.variables == {"name": None, "balance": None}
    with pytest.raises(Unmigratable, match="environment 'prod'"):
        convert(blob("p.txt", b"x", environment="prod"))


def test_a_page_turns_every_failure_into_a_reject_with_the_raw_record() -> None:
    records: list[Any] = [
        entity("c1", "profile", phone_number="555.123.4567"),
        entity("c2", "profile", phone_number="nope"),
        entity("c3", "profile", balance=object()),  # a type no legacy writer used
    ]
    result = transform_page(sources.CUSTOMERS.name, records)
    assert len(result.rows) == 1
    assert [(r.key, r.source) for r in result.rejects] == [
        ("c2/profile", "CustomerData"), ("c3/profile", "CustomerData"),
    ]  # fmt: skip
    assert '"phone_number": "nope"' in result.rejects[0].raw
    assert "not an amount" in result.rejects[1].reason
