"""The dual-write period: records written after a migration are picked up by later runs, and
a run with nothing new changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.azure_fixtures import Migrate, snapshot
from worker.azure.client import AzureStorage
from worker.azure.transforms import call_id_for
from worker.dev import legacy_data as g


def _value(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_arrivals_are_picked_up_and_a_third_run_changes_nothing(
    legacy: AzureStorage, migrate: Migrate, conn: psycopg.Connection[Any]
) -> None:
    g.write_cases(legacy)
    first = migrate()
    assert first.caught_up
    assert first.total("migrated") == 53
    assert first.total("oddities") == 1  # CALL_ODD, kept with its oddities

    g.write_arrivals(legacy)
    second = migrate()
    assert second.caught_up
    # prompts 1 (a new version; the re-upload adds nothing), customers 2, calls 2, entries 5
    assert (second.total("migrated"), second.total("rejected")) == (10, 0)
    assert second.total("oddities") == 0

    full = call_id_for(g.CALL_FULL)
    assert _value(
        conn, "SELECT total_messages, total_turns, total_tool_executions FROM calls"
        " WHERE call_id = %s", full
    ) == (5, 2, 4)  # fmt: skip
    assert _value(conn, "SELECT message_count FROM call_transcripts WHERE call_id = %s", full) == 5
    assert _value(
        conn, "SELECT tool_name FROM call_tool_executions WHERE call_id = %s AND sequence = 14", full
    ) == "send_receipt"  # fmt: skip

    # New calls; the one whose customer arrived with it is linked to that customer.
    assert (
        _value(
            conn,
            "SELECT cu.external_id FROM calls c JOIN customers cu ON cu.id = c.customer_id"
            " WHERE c.twilio_call_sid = %s",
            g.CALL_ARRIVING_CUSTOMER,
        )
        == g.C_ARRIVING
    )
    assert _value(
        conn, "SELECT total_messages FROM calls WHERE twilio_call_sid = %s", g.CALL_ARRIVING
    ) == 2  # fmt: skip
    # A call migrated without its customer is linked once the customer arrives.
    assert (
        _value(
            conn,
            "SELECT cu.external_id FROM calls c JOIN customers cu ON cu.id = c.customer_id"
            " WHERE c.twilio_call_sid = %s",
            g.CALL_UNKNOWN_CUSTOMER,
        )
        == g.C_UNKNOWN
    )
    # A call known only from its transcript grows with it.
    assert _value(
        conn, "SELECT ended_at FROM calls WHERE twilio_call_sid = %s", g.CALL_ORPHAN
    ) == datetime(2024, 9, 9, 9, 10, 30, tzinfo=UTC)  # fmt: skip

    # A changed prompt is a new version; an unchanged re-upload is nothing new.
    versions = conn.execute(
        "SELECT name, version, is_active, prompt_template = %s FROM system_prompts"
        " WHERE name IN ('system_prompt', 'premium_customer') ORDER BY name, version",
        (g.SYSTEM_PROMPT_V2,),
    ).fetchall()
    assert versions == [
        ("premium_customer", 1, True, False),
        ("system_prompt", 1, False, False),
        ("system_prompt", 2, True, True),
    ]

    before = snapshot(conn)
    third = migrate()
    assert third.caught_up
    assert (third.total("migrated"), third.total("rejected")) == (0, 0)
    assert snapshot(conn) == before


def test_a_fixed_record_migrates_and_its_reject_is_resolved(
    legacy: AzureStorage, migrate: Migrate, conn: psycopg.Connection[Any]
) -> None:
    g.write_cases(legacy)
    assert migrate().caught_up
    key = f"{g.C_BAD_PHONE}/profile"
    assert _value(
        conn, "SELECT resolved_at FROM migration_rejects WHERE key = %s", key
    ) is None  # fmt: skip

    legacy.table("CustomerData").upsert_entity(
        {"PartitionKey": g.C_BAD_PHONE, "RowKey": "profile", "phone_number": "+33612345678"}
    )
    assert migrate().caught_up
    assert _value(
        conn, "SELECT phone_number FROM customers WHERE external_id = %s", g.C_BAD_PHONE
    ) == "+33612345678"  # fmt: skip
    assert _value(
        conn, "SELECT resolved_at FROM migration_rejects WHERE key = %s", key
    ) is not None  # fmt: skip


def test_an_entry_rewritten_as_another_type_moves_table(
    legacy: AzureStorage, migrate: Migrate, conn: psycopg.Connection[Any]
) -> None:
    g.write_cases(legacy)
    assert migrate().caught_up
    full = call_id_for(g.CALL_FULL)
    legacy.table("CallTranscripts").upsert_entity(
        {"PartitionKey": g.CALL_FULL, "RowKey": "000007", "timestamp": "2024-03-05T14:30:30",
         "entry_type": "event", "event_type": "hold_started"}
    )  # fmt: skip
    assert migrate().caught_up
    assert _value(
        conn, "SELECT count(*) FROM call_messages WHERE call_id = %s AND sequence = 7", full
    ) == 0  # fmt: skip
    assert _value(
        conn, "SELECT event_type FROM call_events WHERE call_id = %s AND sequence = 7", full
    ) == "hold_started"  # fmt: skip
    assert _value(conn, "SELECT total_messages FROM calls WHERE call_id = %s", full) == 3
    assert _value(conn, "SELECT message_count FROM call_transcripts WHERE call_id = %s", full) == 3


@pytest.mark.parametrize(
    "overlap",
    [timedelta(0), None],
    ids=["found in the store", "found in the same batch (overlap re-read)"],
)
def test_a_call_sid_under_a_second_customer_is_a_reject(
    legacy: AzureStorage,
    migrate: Migrate,
    conn: psycopg.Connection[Any],
    overlap: timedelta | None,
) -> None:
    g.write_cases(legacy)
    assert migrate().caught_up
    legacy.table("CallHistory").upsert_entity(
        {"PartitionKey": g.C_DOTS, "RowKey": g.CALL_FULL, "start_time": "2024-01-01T00:00:00"}
    )
    assert migrate(overlap=overlap).caught_up
    reason = _value(
        conn,
        "SELECT reason FROM migration_rejects WHERE source = 'CallHistory' AND key = %s",
        f"{g.C_DOTS}/{g.CALL_FULL}",
    )
    assert reason == f"the call SID is already migrated, from entity {g.C_NEW}/{g.CALL_FULL}"
    assert _value(
        conn, "SELECT legacy_customer_id FROM calls WHERE twilio_call_sid = %s", g.CALL_FULL
    ) == g.C_NEW  # fmt: skip
