"""Every untidy case of the legacy format, migrated from Azurite and checked field by field."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.conftest import Database
from worker.azure.transforms import CALL_NAMESPACE
from worker.dev import legacy_data as g


def _rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def _one(conn: psycopg.Connection[Any], query: str, *params: Any) -> dict[str, Any]:
    found = _rows(conn, query, *params)
    assert len(found) == 1, found
    return found[0]


def _call(conn: psycopg.Connection[Any], sid: str) -> dict[str, Any]:
    return _one(conn, "SELECT * FROM calls WHERE twilio_call_sid = %s", sid)


def _rejects(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], str]:
    return {
        (r["source"], r["key"]): r["reason"]
        for r in _rows(conn, "SELECT source, key, reason FROM migration_rejects")
    }


@pytest.fixture
def conn(cases_migrated: Database) -> Iterator[psycopg.Connection[Any]]:
    """The module's database, where ``write_cases`` was migrated once."""
    with cases_migrated.connect(autocommit=True) as connection:
        yield connection


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_customers_every_form(conn: psycopg.Connection[Any]) -> None:
    new = _one(conn, "SELECT * FROM customers WHERE external_id = %s", g.C_NEW)
    assert new["phone_number"] == "+15551234567"
    assert new["name"] == "Zoë Ångström-Nakamura 🙂"
    assert new["account_last_4"] == "0042"
    assert new["postal_code"] == "M5V 2T6"
    assert new["balance"] == Decimal("1234.50")
    assert (new["days_overdue"], new["segment"], new["language"]) == (12, "premium", "fr")
    assert new["metadata"] == {
        "preferred_contact_time": "evenings",
        "risk_score": 7,
        "vip": True,
        "lifetime_value_cents": 12_345_678_901,
    }
    old = _one(conn, "SELECT * FROM customers WHERE external_id = %s", g.C_OLD)
    assert old["phone_number"] == "+15551234567"  # "(555) 123-4567"
    assert old["account_last_4"] == "0042"  # stored as the number 42
    assert old["balance"] == Decimal("1234.50")  # the string "1234.50"
    assert (old["days_overdue"], old["segment"], old["language"]) == (0, "standard", "en")
    assert old["metadata"] == {}
    dots = _one(conn, "SELECT * FROM customers WHERE external_id = %s", g.C_DOTS)
    assert (dots["phone_number"], dots["account_last_4"], dots["name"]) == (
        "+15559876543",
        "0007",
        "李小龍",
    )
    assert not _rows(conn, "SELECT 1 FROM customers WHERE external_id = %s", g.C_BAD_PHONE)
    assert "not a phone number" in _rejects(conn)[("CustomerData", f"{g.C_BAD_PHONE}/profile")]


def test_organizations_and_members(conn: psycopg.Connection[Any]) -> None:
    acme = _one(conn, "SELECT * FROM organizations WHERE external_id = %s", g.ORG_ACME)
    assert (acme["name"], acme["domain"]) == ("Acme Collections", "acme.example")
    assert acme["settings"] == {"timezone": "America/Toronto", "max_attempts": 3}
    members = {
        r["external_id"]: r["role"]
        for r in _rows(
            conn,
            "SELECT c.external_id, m.role FROM organization_members m"
            " JOIN customers c ON c.id = m.customer_id WHERE m.organization_id = %s",
            acme["id"],
        )
    }
    assert members == {g.C_NEW: "admin", g.C_OLD: "member"}  # role missing means member
    bare = _one(conn, "SELECT * FROM organizations WHERE external_id = %s", g.ORG_BARE)
    assert (bare["domain"], bare["settings"]) == (None, {})  # empty settings
    ghost = _one(conn, "SELECT id FROM organizations WHERE external_id = %s", g.ORG_GHOST)
    assert _rows(
        conn, "SELECT role FROM organization_members WHERE organization_id = %s", ghost["id"]
    ) == [{"role": "viewer"}]
    rejects = _rejects(conn)
    assert (
        "names no migrated customer"
        in rejects[("OrganizationData", f"{g.ORG_GHOST}/org/members/cust-999999")]
    )
    assert "settings is not a JSON object" in rejects[("OrganizationData", f"{g.ORG_BROKEN}/org")]


def test_behavioral_configs_and_prompts(conn: psycopg.Connection[Any]) -> None:
    tactics = {r["name"]: r for r in _rows(conn, "SELECT * FROM behavioral_tactics")}
    assert set(tactics) == set(g.TACTICS)
    given = tactics["aggressive_anchor"]  # index 0: archetype and description in the JSON
    assert (given["archetype"], given["description"]) == (
        "Aggressive Anchor",
        "The aggressive anchor approach.",
    )
    assert given["config"]["tactics"][0]["name"] == "High Anchor"
    derived = tactics["empathetic_gradual"]  # index 1: no archetype, and a byte-order mark
    assert (derived["archetype"], derived["description"]) == ("Empathetic Gradual", None)
    assert derived["config"]["urgency_level"] in range(1, 6)
    assert "not valid JSON" in _rejects(conn)[("behavioral-configs", g.BROKEN_CONFIG)]

    prompts = {r["name"]: r for r in _rows(conn, "SELECT * FROM system_prompts")}
    assert set(prompts) == {"system_prompt", "premium_customer", "overdue_30_days"}
    default = prompts["system_prompt"]
    assert (default["environment"], default["version"], default["is_active"]) == (
        "production",
        1,
        True,
    )
    assert default["prompt_template"] == g.SYSTEM_PROMPT
    assert default["variables"] == {"customer_name": None, "balance": None, "days_overdue": None}
    premium = prompts["premium_customer"]
    assert premium["environment"] == "staging"
    assert premium["prompt_template"] == g.PREMIUM_PROMPT  # byte-order mark dropped
    assert prompts["overdue_30_days"]["environment"] == "development"
    assert prompts["overdue_30_days"]["variables"] == {"days_overdue": None}
    assert "not UTF-8" in _rejects(conn)[("prompts", g.BAD_PROMPT)]


def test_calls_every_form(conn: psycopg.Connection[Any]) -> None:
    full = _call(conn, g.CALL_FULL)
    assert full["call_id"] == uuid.uuid5(CALL_NAMESPACE, g.CALL_FULL)
    assert (full["source"], full["tenant_id"], full["agent_id"]) == ("azure", None, None)
    assert (full["call_type"], full["direction"], full["status"]) == (
        "simulator",
        "inbound",
        "ended",
    )
    assert (full["started_at"], full["ended_at"], full["duration_seconds"]) == (
        at(2024, 3, 5, 14, 30),
        at(2024, 3, 5, 14, 32, 5),
        125,
    )
    assert (full["conversation_id"], full["outcome"], full["agent_name"]) == (
        "conv_01HQ7Z",
        "payment_arranged",
        "Alex",
    )
    customer = _one(conn, "SELECT id FROM customers WHERE external_id = %s", g.C_NEW)
    org = _one(conn, "SELECT id FROM organizations WHERE external_id = %s", g.ORG_ACME)
    tactic = _one(conn, "SELECT id FROM behavioral_tactics WHERE name = 'aggressive_anchor'")
    assert (full["customer_id"], full["organization_id"], full["behavioral_tactic_id"]) == (
        customer["id"],
        org["id"],
        tactic["id"],
    )
    assert full["legacy_customer_id"] == g.C_NEW
    assert full["metadata"]["legacy_status"] == "completed"
    assert full["metadata"]["recording_note"] == "kept as metadata"

    old = _call(conn, g.CALL_OLD)  # ISO strings without offset, duration "330", no defaults
    assert (old["started_at"], old["ended_at"], old["duration_seconds"]) == (
        at(2024, 3, 5, 14, 30),
        at(2024, 3, 5, 14, 35, 30),
        330,
    )
    assert (old["call_type"], old["direction"], old["status"]) == ("real_call", "outbound", "ended")

    derived = _call(conn, g.CALL_DERIVED)  # -04:00 offset; duration from the two times
    assert (derived["started_at"], derived["duration_seconds"]) == (at(2024, 6, 1, 14, 0), 245)

    no_answer = _call(conn, g.CALL_NO_ANSWER)
    assert (no_answer["status"], no_answer["metadata"]["legacy_status"]) == ("ended", "no_answer")
    failed = _call(conn, g.CALL_FAILED)
    assert (failed["status"], failed["started_at"]) == (
        "error",
        datetime(2024, 7, 3, 9, 0, 0, 250000, tzinfo=UTC),
    )
    running = _call(conn, g.CALL_IN_PROGRESS)
    assert (running["status"], running["ended_at"], running["duration_seconds"]) == (
        "in_progress",
        None,
        None,
    )

    unknown = _call(conn, g.CALL_UNKNOWN_CUSTOMER)  # PartitionKey names no customer
    assert (unknown["customer_id"], unknown["legacy_customer_id"]) == (None, g.C_UNKNOWN)
    assert (unknown["behavioral_tactic_id"], unknown["organization_id"]) == (None, None)
    assert unknown["metadata"]["legacy_behavioral_tactic"] == "retired_tactic"
    assert unknown["metadata"]["legacy_organization_id"] == "org-gone"

    rejects = _rejects(conn)
    assert "not an ISO-8601 time" in rejects[("CallHistory", f"{g.C_OLD}/{g.CALL_BAD_START}")]
    assert "not a call SID" in rejects[("CallHistory", f"{g.C_OLD}/{g.BAD_SID}")]
    # Only those two: a key or a start that cannot be read.
    assert sorted(k for s, k in rejects if s == "CallHistory") == sorted(
        [f"{g.C_OLD}/{g.CALL_BAD_START}", f"{g.C_OLD}/{g.BAD_SID}"]
    )


def test_an_end_kept_at_whole_seconds_is_the_same_instant_as_the_start(
    conn: psycopg.Connection[Any],
) -> None:
    call = _call(conn, g.CALL_WHOLE_SECONDS)  # start 10:00:00.6, end "10:00:00"
    started = datetime(2024, 4, 10, 10, 0, 0, 600_000, tzinfo=UTC)
    assert (call["started_at"], call["ended_at"], call["duration_seconds"]) == (started, started, 0)
    assert (call["status"], call["metadata"]) == ("ended", {"legacy_status": "no_answer"})


def test_a_call_with_odd_fields_is_kept_with_its_customer_and_outcome(
    conn: psycopg.Connection[Any],
) -> None:
    call = _call(conn, g.CALL_ODD)
    customer = _one(conn, "SELECT id FROM customers WHERE external_id = %s", g.C_OLD)
    assert (call["customer_id"], call["direction"], call["outcome"]) == (
        customer["id"],
        "inbound",  # "Inbound"
        "payment_arranged",
    )
    assert (call["status"], call["call_type"]) == ("ended", "real_call")  # "busy", "demo"
    assert (call["started_at"], call["ended_at"], call["duration_seconds"]) == (
        at(2024, 4, 11, 9),
        None,  # ten minutes before the start
        None,  # "-1"
    )
    assert (call["conversation_id"], call["agent_name"]) == ("987654", "A" * 255)
    assert call["metadata"]["legacy_status"] == "busy"
    oddities = call["metadata"]["legacy_oddities"]
    assert sorted(oddities) == [
        "agent_name", "call_type", "conversation_id", "direction", "duration_seconds",
        "end_time", "status",
    ]  # fmt: skip
    assert oddities["end_time"] == {
        "value": "2024-04-11T08:50:00",
        "problem": "end_time is 600 s before start_time; left empty",
    }
    assert oddities["agent_name"]["value"] == "A" * 300
    # Its transcript lands on it, not on a call synthesized without its customer.
    assert (call["total_messages"], "legacy_origin" in call["metadata"]) == (2, False)


def test_calls_known_only_from_their_transcript(conn: psycopg.Connection[Any]) -> None:
    orphan = _call(conn, g.CALL_ORPHAN)  # no CallHistory entity at all
    assert (orphan["customer_id"], orphan["legacy_customer_id"]) == (None, None)
    assert (orphan["started_at"], orphan["ended_at"], orphan["duration_seconds"]) == (
        at(2024, 9, 9, 9, 9, 9),
        at(2024, 9, 9, 9, 10, 0),
        51,
    )
    assert orphan["metadata"] == {"legacy_origin": "transcripts_only"}
    assert (orphan["total_messages"], orphan["total_turns"]) == (2, 1)
    # Its CallHistory entity is beyond repair: the reject says why, the transcript still lands.
    bad_start = _call(conn, g.CALL_BAD_START)
    assert bad_start["started_at"] == at(2024, 8, 1, 12, 0, 1)
    assert bad_start["total_messages"] == 2


def test_transcript_entries(conn: psycopg.Connection[Any]) -> None:
    call_id = uuid.uuid5(CALL_NAMESPACE, g.CALL_FULL)
    messages = _rows(
        conn,
        "SELECT sequence, timestamp, role, content FROM call_messages"
        " WHERE call_id = %s ORDER BY sequence",
        call_id,
    )
    assert [(m["sequence"], m["role"]) for m in messages] == [
        (1, "assistant"),
        (2, "user"),
        (7, "system"),
        (8, "user"),  # entry_type missing means transcript
    ]
    assert messages[1]["content"] == "Oui, c'est moi 🙂"
    assert messages[2]["content"] == ""
    assert messages[3]["content"] == g.LONG_TEXT
    assert messages[3]["timestamp"] == at(2024, 3, 5, 14, 31)  # a string without offset
    assert messages[0]["timestamp"] == at(2024, 3, 5, 14, 30, 2)

    tools = _rows(
        conn,
        "SELECT sequence, tool_name, request, response, request_text, response_text, success,"
        " duration_ms FROM call_tool_executions WHERE call_id = %s ORDER BY sequence",
        call_id,
    )
    assert tools[0] == {
        "sequence": 4,
        "tool_name": "verify_account",
        "request": {"account_last_4": "0042", "postal_code": "M5V 2T6"},
        "response": {"verified": True},
        "request_text": None,
        "response_text": None,
        "success": True,  # the string "True"
        "duration_ms": 230,
    }
    cut = tools[1]  # the old writer cut the request: not JSON, kept as text on the row
    assert (cut["request"], cut["request_text"]) == (
        None,
        '{"amount": 120.5, "card_token": "tok_4111111',
    )
    assert (cut["response"], cut["success"]) == ({"status": "ok", "confirmation": "PMT-77"}, False)
    assert (tools[2]["sequence"], tools[2]["request"], tools[2]["request_text"]) == (10, None, None)
    assert tools[2]["success"] is False  # the string "False"

    events = _rows(
        conn,
        "SELECT sequence, event_type, event_data, event_data_text FROM call_events"
        " WHERE call_id = %s ORDER BY sequence",
        call_id,
    )
    assert events == [
        {"sequence": 6, "event_type": "call_connected",
         "event_data": {"sip_call_id": "abc@10.0.0.1"}, "event_data_text": None},
        {"sequence": 9, "event_type": "error", "event_data": None,
         "event_data_text": "Traceback (most recent call last): TimeoutError"},
        {"sequence": 11, "event_type": "call_ended", "event_data": None, "event_data_text": None},
    ]  # fmt: skip

    call = _call(conn, g.CALL_FULL)
    assert (call["total_messages"], call["total_turns"], call["total_tool_executions"]) == (4, 2, 3)
    transcript = _one(conn, "SELECT * FROM call_transcripts WHERE call_id = %s", call_id)
    assert transcript["message_count"] == 4

    assert transcript["transcript_text"] == "\n".join(
        f"{m['role']}: {m['content']}" for m in messages
    )
    assert transcript["transcript_data"][0] == {
        "sequence": 1,
        "timestamp": "2024-03-05T14:30:02+00:00",
        "role": "assistant",
        "content": messages[0]["content"],
        "node_id": None,
        "turn_number": None,
    }

    rejects = _rejects(conn)
    assert "not an ISO-8601 time" in rejects[("CallTranscripts", f"{g.CALL_NO_ANSWER}/000001")]
    assert "'robot' is not one of" in rejects[("CallTranscripts", f"{g.CALL_NO_ANSWER}/000002")]
    assert "not a call SID" in rejects[("CallTranscripts", f"{g.BAD_SID}/000001")]


def test_every_record_is_migrated_or_rejected(conn: psycopg.Connection[Any]) -> None:
    rejects = _rejects(conn)
    assert len(rejects) == 10
    raw = _one(
        conn,
        "SELECT raw FROM migration_rejects WHERE source = 'CustomerData' AND key = %s",
        f"{g.C_BAD_PHONE}/profile",
    )["raw"]
    assert '"phone_number": "call me maybe"' in raw
    counts = _one(
        conn,
        "SELECT (SELECT count(*) FROM customers) AS customers,"
        " (SELECT count(*) FROM organizations) AS organizations,"
        " (SELECT count(*) FROM calls) AS calls,"
        " (SELECT count(*) FROM call_messages) + (SELECT count(*) FROM call_tool_executions)"
        " + (SELECT count(*) FROM call_events) AS entries",
    )
    # 4 customers - 1 reject; 4 organizations - 1; 11 call entities - 2 + 2 known only from
    # their transcripts; 23 entries - 3.
    assert counts == {"customers": 3, "organizations": 3, "calls": 11, "entries": 20}
    # Old months got their partitions before the rows that need them.
    months = {
        r["relname"]
        for r in _rows(
            conn, "SELECT relname FROM pg_class WHERE relname LIKE 'call\\_messages\\_2024\\_%%'"
        )
    }
    assert {"call_messages_2024_03", "call_messages_2024_08", "call_messages_2024_09"} <= months
