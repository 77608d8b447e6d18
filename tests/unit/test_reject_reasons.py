"""Every reject reason has a kind with an action, and the docs list every kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.azure.reject_reasons import KINDS, action, kind_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "migration.md"


@pytest.mark.parametrize(
    ("source", "reason", "kind"),
    [
        ("CallHistory", "start_time is missing", "call_start_time"),
        ("CallHistory", "start_time 'yesterday' is not an ISO-8601 time", "call_start_time"),
        ("CallHistory", "RowKey 'CA-x' is not a call SID (CA + 32 lowercase hex)", "unreadable_key"),
        ("CallHistory", "PartitionKey is empty or longer than 255 characters", "unreadable_key"),
        ("CallHistory", "the call SID is already migrated, from entity a/CA1", "duplicate_call_sid"),
        ("CallTranscripts", "RowKey 'first' is not a sequence number", "unreadable_key"),
        ("CallTranscripts", "timestamp is missing", "missing_field"),
        ("CallTranscripts", "speaker 'robot' is not one of agent, customer, system", "bad_value"),
        ("CustomerData", "RowKey 'x' is not 'profile'", "unreadable_key"),
        ("CustomerData", "phone_number 'x' is not a phone number that maps to E.164", "bad_value"),
        ("OrganizationData", "member customer_id 'c' names no migrated customer",
         "member_without_customer"),
        ("OrganizationData", "settings is not a JSON object", "unreadable_document"),
        ("OrganizationData", "members[0] is not an object", "unreadable_document"),
        ("OrganizationData", "name is missing", "missing_field"),
        ("behavioral-configs", "blob is not valid JSON: Expecting value", "unreadable_document"),
        ("behavioral-configs", "blob name is not <name>.json", "unreadable_key"),
        ("prompts", "prompt is not UTF-8 text (invalid start byte at byte 4)",
         "unreadable_document"),
        ("CustomerData", "PostgreSQL refused it: new row violates", "refused_by_postgresql"),
        ("prompts", "unexpected KeyError while transforming: 'x'", "transform_error"),
    ],
)  # fmt: skip
def test_each_reason_has_its_kind(source: str, reason: str, kind: str) -> None:
    assert kind_of(source, reason).name == kind
    assert "{source}" not in action(source, reason)


def test_the_start_time_kind_is_only_for_calls() -> None:
    assert kind_of("CallTranscripts", "start_time is missing").name == "missing_field"


def test_the_docs_say_what_to_do_about_each_kind() -> None:
    text = DOCS.read_text()
    for kind in KINDS:
        assert f"`{kind.name}`" in text, f"docs/migration.md does not name {kind.name}"
