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
    ("properties", "reason"),
    [
        ({}, "start_time is missing"),
        ({"start_time": "2024-01-02", "end_time": "2024-01-01"}, "before start_time"),
        ({"start_time": "2024-01-01", "status": "busy"}, "status 'busy' is not one of"),
        ({"start_time": "2024-01-01", "duration_seconds": "-5"}, "negative"),
        ({"start_time": "2024-01-01", "outcome": "x" * 101}, "at most 100"),
    ],
)
def test_calls_beyond_repair(properties: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unmigratable, match=reason):
        call(entity("cust-1", SID, **properties))


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
