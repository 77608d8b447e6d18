"""The Azure comparison of the consistency check, against Azurite and a migrated store: clean
when the store holds what Azure holds, and naming each call that differs, with its keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests import factories
from tests.azure_fixtures import Migrate
from worker.azure.client import AzureStorage
from worker.azure.transforms import call_id_for
from worker.calls.finalize import finalize_call
from worker.cli import app
from worker.consistency.runner import Report, run_checks
from worker.dev import azurite
from worker.dev import legacy_data as g
from worker.settings import Settings, get_settings

NOW = datetime.now(UTC)
NEW_CALL = g.sid(900)
runner = CliRunner()


@pytest.fixture
def check_settings(azure_settings: Settings) -> Settings:
    # No overlap window: everything here was written seconds ago, and an incremental run must
    # re-read only what changed since the previous run.
    return azure_settings.model_copy(update={"migration_overlap_seconds": 0})


@pytest.fixture
def migrated(
    legacy: AzureStorage, migrate: Migrate, settings: Settings, conn: psycopg.Connection[Any]
) -> AzureStorage:
    """Every untidy case of the legacy format and 24 realistic calls, migrated; and a runtime
    call with the SID of a migrated one (the dual-write period records both, by design)."""
    g.write_cases(legacy)
    g.write_bulk(legacy, calls=24, seed=7)
    assert migrate().caught_up
    body = factories.small_payload(3, twilio_call_sid=g.CALL_FULL)
    finalize_call(body, settings=settings, task_id="t", engine=migrate.engine)
    assert conn.execute(
        "SELECT count(*) FROM calls WHERE twilio_call_sid = %s", (g.CALL_FULL,)
    ).fetchone() == (2,)
    return legacy


def _check(settings: Settings, **kwargs: Any) -> Report:
    return run_checks(settings, now=NOW, **kwargs)


def _azure(report: Report) -> list[tuple[str, dict[str, Any]]]:
    return [(d.kind, d.keys) for d in report.discrepancies if d.check.startswith("azure")]


def _sorted(found: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(found, key=repr)


def _call(kind: str, sid: str, *aspects: str) -> tuple[str, dict[str, Any]]:
    keys: dict[str, Any] = {"call_sid": sid, "call_id": str(call_id_for(sid))}
    if aspects:
        keys["aspects"] = list(aspects)
    return kind, keys


def _count(source: str, azure: int, postgres: int, rejected: int) -> tuple[str, dict[str, Any]]:
    keys = {"source": source, "azure": azure, "postgres": postgres, "rejected": rejected}
    return "azure_count_mismatch", keys


@pytest.mark.usefixtures("migrated")
def test_a_migrated_store_is_clean_and_the_next_run_reads_nothing(
    check_settings: Settings,
) -> None:
    full = _check(check_settings, full=True)
    assert full.discrepancies == []  # every check: the call store's and Azure's
    calls = full.stats["azure_calls"]
    assert calls["mode"] == "full" and calls["calls_in_azure"] == 24 + 11
    assert (calls["rounds"], calls["calls_compared"], calls["statements"]) == (1, 0, 1)
    # The cases' rejected records (one or more in every source) are accounted for, and the
    # runtime call with a migrated call's SID is not compared at all.
    counts = full.stats["azure_counts"]
    assert all(c["azure"] == c["postgres"] + c["rejected"] for c in counts.values())
    assert all(c["rejected"] >= 1 for c in counts.values())
    assert counts["CallHistory"]["rejected"] == 2

    routine = _check(check_settings)
    assert routine.since is not None and routine.discrepancies == []
    assert routine.stats["azure_calls"]["entities_read"] == 0
    assert routine.stats["azure_calls"]["calls_compared"] == 0
    assert "skipped" in routine.stats["azure_counts"]


def _add_a_call_and_an_entry(legacy: AzureStorage) -> None:
    legacy.table("CallHistory").upsert_entity(
        {"PartitionKey": g.C_OLD, "RowKey": NEW_CALL, "start_time": "2024-05-05T10:00:00"}
    )
    legacy.table("CallTranscripts").upsert_entity(
        {"PartitionKey": NEW_CALL, "RowKey": "000001", "timestamp": "2024-05-05T10:00:02",
         "speaker": "agent", "text": "Hello from the dual-write period."}
    )  # fmt: skip
    legacy.table("CallTranscripts").upsert_entity(
        {"PartitionKey": g.CALL_OLD, "RowKey": "000004", "timestamp": "2024-03-05T14:31:10",
         "speaker": "customer", "text": "One more thing."}
    )  # fmt: skip


def test_records_added_to_azure_after_migration_are_named(
    migrated: AzureStorage, check_settings: Settings
) -> None:
    before = _check(check_settings, full=True)
    _add_a_call_and_an_entry(migrated)

    added = [
        _call("azure_missing_in_postgres", NEW_CALL),
        _call("azure_call_differs", g.CALL_OLD, "transcript_entries", "content"),
    ]
    routine = _check(check_settings)
    assert routine.since == before.started_at
    assert _sorted(_azure(routine)) == _sorted(added)
    assert routine.stats["azure_calls"]["calls_compared"] == 2
    # The three changed entities, then each call whole: 1 + 1 of the new one, 1 + 4 of the other.
    assert routine.stats["azure_calls"]["entities_read"] == 3 + 2 + 5

    full = _check(check_settings, full=True)
    counts = full.stats["azure_counts"]
    assert _sorted(_azure(full)) == _sorted(
        [
            *added,
            _count("CallHistory", counts["CallHistory"]["azure"],
                   counts["CallHistory"]["azure"] - 3, 2),
            _count("CallTranscripts", counts["CallTranscripts"]["azure"],
                   counts["CallTranscripts"]["azure"] - 2 - 3, 3),
        ]
    )  # fmt: skip
    assert full.stats["azure_calls"]["calls_compared"] <= 2 * 9  # bisected to their buckets


def test_records_edited_in_azure_after_migration_are_named(
    migrated: AzureStorage, check_settings: Settings
) -> None:
    assert _check(check_settings, full=True).discrepancies == []
    history, transcripts = migrated.table("CallHistory"), migrated.table("CallTranscripts")
    derived = history.get_entity(g.C_OLD, g.CALL_DERIVED)
    derived["start_time"] = "2024-06-01T10:00:30-04:00"
    history.upsert_entity(derived)
    no_answer = history.get_entity(g.C_DOTS, g.CALL_NO_ANSWER)
    no_answer["outcome"] = "callback_scheduled"
    history.upsert_entity(no_answer)
    entry = transcripts.get_entity(g.CALL_FULL, "000002")
    entry["text"] = "Non, ce n'est pas moi."
    transcripts.upsert_entity(entry)

    expected = [
        _call("azure_call_differs", g.CALL_DERIVED, "started_at"),
        _call("azure_call_differs", g.CALL_NO_ANSWER, "call_fields"),
        _call("azure_call_differs", g.CALL_FULL, "content"),
    ]
    assert _sorted(_azure(_check(check_settings))) == _sorted(expected)
    full = _check(check_settings, full=True)
    assert _sorted(_azure(full)) == _sorted(expected)
    detail = {d.keys["call_sid"]: d.detail for d in full.discrepancies}
    assert detail[g.CALL_DERIVED].startswith(
        "started_at: Azure 2024-06-01T14:00:30+00:00, PostgreSQL 2024-06-01T14:00:00+00:00"
    )


def test_a_message_row_deleted_in_postgres_is_named(
    migrated: AzureStorage, check_settings: Settings, conn: psycopg.Connection[Any]
) -> None:
    full_call = call_id_for(g.CALL_FULL)
    conn.execute("DELETE FROM call_messages WHERE call_id = %s AND sequence = 2", (full_call,))
    report = _check(check_settings, full=True)
    counts = report.stats["azure_counts"]["CallTranscripts"]
    assert _sorted([(d.kind, d.keys) for d in report.discrepancies]) == _sorted(
        [
            ("summary_mismatch", {"call_id": str(full_call), "columns": ["total_messages", "total_turns"]}),
            _call("azure_call_differs", g.CALL_FULL, "transcript_entries", "content"),
            _count("CallTranscripts", counts["azure"], counts["azure"] - counts["rejected"] - 1,
                   counts["rejected"]),
        ]
    )  # fmt: skip
    assert next(d for d in report.discrepancies if d.kind == "azure_call_differs").detail == (
        "transcript entries: Azure 4, PostgreSQL 3; entry content differs"
    )


def test_a_rejected_record_is_not_reported_but_one_without_its_reject_is(
    migrated: AzureStorage, migrate: Migrate, check_settings: Settings
) -> None:
    entry = migrated.table("CallTranscripts").get_entity(g.CALL_OLD, "000002")
    entry["timestamp"] = "half past two"
    migrated.table("CallTranscripts").upsert_entity(entry)
    key = f"{g.CALL_OLD}/000002"

    found = _azure(_check(check_settings, full=True))
    assert (
        "azure_reject_missing",
        {"source": "CallTranscripts", "key": key, "call_sid": g.CALL_OLD},
    ) in found
    assert _call("azure_call_differs", g.CALL_OLD, "transcript_entries", "content") in found

    assert migrate().caught_up  # the migration keeps it as a reject
    assert _check(check_settings, full=True).discrepancies == []


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, ["check", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def cli(
    configured: Settings, check_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """``callstore check`` in this process, with the Azure comparison configured."""
    secret = check_settings.azure_connection_string
    assert secret is not None
    monkeypatch.setenv("CALLSTORE_AZURE_CONNECTION_STRING", secret.get_secret_value())
    monkeypatch.setenv("CALLSTORE_MIGRATION_OVERLAP_SECONDS", "0")
    monkeypatch.setenv("CALLSTORE_AZURE_RETRY_TOTAL", "0")
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.usefixtures("cli")
def test_repair_migrates_the_calls_again_and_the_next_check_exits_0(
    migrated: AzureStorage, conn: psycopg.Connection[Any]
) -> None:
    assert _invoke("--full").exit_code == 0
    _add_a_call_and_an_entry(migrated)
    conn.execute(
        "DELETE FROM call_messages WHERE call_id = %s AND sequence = 2",
        (call_id_for(g.CALL_FULL),),
    )

    found = _invoke("--full", "--json")
    assert found.exit_code == 1
    for sid in (NEW_CALL, g.CALL_OLD, g.CALL_FULL):
        assert sid in found.output

    dry = _invoke("--full", "--repair")
    assert dry.exit_code == 1
    assert (
        "would repair: migrate 3 call(s) again from Azure" in dry.output
        and "nothing changed" in dry.output
    )
    assert conn.execute(
        "SELECT count(*) FROM calls WHERE twilio_call_sid = %s", (NEW_CALL,)
    ).fetchone() == (0,)

    fixed = _invoke("--full", "--repair", "--no-dry-run")
    assert fixed.exit_code == 0, fixed.output
    assert (
        "repaired: migrated 3 call(s) again from Azure: 4 record(s) written, 0 stored entries"
        " that Azure does not hold removed, 0 reject(s) kept"
    ) in fixed.output
    assert _invoke("--full").exit_code == 0
    assert _invoke().exit_code == 0  # and the routine run after it
    assert conn.execute(
        "SELECT total_messages FROM calls WHERE call_id = %s", (call_id_for(g.CALL_FULL),)
    ).fetchone() == (4,)


@pytest.mark.usefixtures("cli", "migrated")
def test_exit_2_when_azure_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, azurite_server: azurite.Azurite
) -> None:
    assert _invoke("--full").exit_code == 0
    closed = azurite.connection_string(1, 1)  # nothing listens on port 1
    monkeypatch.setenv("CALLSTORE_AZURE_CONNECTION_STRING", closed)
    get_settings.cache_clear()
    result = _invoke()
    assert result.exit_code == 2
    assert "check could not run: Azure comparison: reading table CallHistory: cannot reach" in (
        " ".join(result.output.split())
    )
    assert "AccountKey" not in result.output
    assert "retried from its checkpoint" not in result.output


def test_without_a_connection_string_azure_is_skipped_and_said_so(settings: Settings) -> None:
    report = _check(settings.model_copy(update={"azure_connection_string": None}))
    assert "azure_calls" not in report.checks
    assert report.stats["azure"] == {
        "skipped": "CALLSTORE_AZURE_CONNECTION_STRING is not set, so Azure was not compared"
    }
    with pytest.raises(ValueError, match="azure_calls: CALLSTORE_AZURE_CONNECTION_STRING"):
        _check(settings, names=["azure_calls"])
