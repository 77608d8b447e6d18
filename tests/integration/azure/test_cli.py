"""``callstore migrate azure status|run|rejects|rescan``, in process, against Azurite."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.azure_fixtures import Migrate
from tests.helpers import invoke_cli
from worker.azure import sources, transforms
from worker.azure.client import AzureStorage
from worker.azure.values import Unmigratable
from worker.dev import azurite
from worker.dev import legacy_data as generate
from worker.settings import Settings, get_settings


@pytest.fixture
def azure_configured(
    configured: Settings, azurite_server: azurite.Azurite, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("CALLSTORE_AZURE_CONNECTION_STRING", azurite_server.connection_string)
    monkeypatch.setenv("CALLSTORE_AZURE_RETRY_TOTAL", "1")
    monkeypatch.setenv("CALLSTORE_AZURE_RETRY_BACKOFF_SECONDS", "0.01")
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.usefixtures("azure_configured")
def test_status_run_until_done_status_rejects(
    legacy: AzureStorage, conn: psycopg.Connection[Any]
) -> None:
    written = generate.write_cases(legacy)
    before = invoke_cli("migrate", "azure", "status")
    assert before.exit_code == 0, before.output
    assert f"{written.total} record(s) left" in before.output
    assert "not caught up" in before.output

    one = invoke_cli("migrate", "azure", "run", "--batch-size", "5")
    assert one.exit_code == 0, one.output
    assert "1 batch(es): 5 read, 5 migrated, 0 rejected; more to do" in one.output

    done = invoke_cli("migrate", "azure", "run", "--until-done")
    assert done.exit_code == 0, done.output
    assert "caught up" in done.output
    assert "migrated 48, rejected 10" in done.output

    after = invoke_cli("migrate", "azure", "status")
    assert "0 record(s) left; 10 rejected" in after.output
    assert "; caught up" in after.output
    for source in ("behavioral-configs", "prompts", "CustomerData", "CallTranscripts"):
        assert source in after.output

    rejects = invoke_cli("migrate", "azure", "rejects", "--source", "CustomerData")
    assert "'call me maybe' is not a phone number" in rejects.output
    shown = invoke_cli("migrate", "azure", "rejects", "--key", generate.BROKEN_CONFIG)
    assert '{"urgency_level": 4, "tac' in shown.output


@pytest.mark.usefixtures("configured")
def test_without_a_connection_string_it_says_which_setting() -> None:
    result = invoke_cli("migrate", "azure", "status")
    assert result.exit_code == 2
    assert "CALLSTORE_AZURE_CONNECTION_STRING is not set" in result.output


@pytest.mark.usefixtures("azure_configured")
def test_rejects_say_what_to_do(legacy: AzureStorage) -> None:
    generate.write_cases(legacy)
    assert invoke_cli("migrate", "azure", "run", "--until-done").exit_code == 0
    listed = invoke_cli("migrate", "azure", "rejects", "--source", "CallHistory")
    assert "call_start_time" in listed.output and "unreadable_key" in listed.output
    assert "What to do:" in listed.output
    assert "set start_time on the entity in Azure" in listed.output
    shown = invoke_cli(
        "migrate", "azure", "rejects", "--key", f"{generate.C_OLD}/{generate.CALL_BAD_START}"
    )
    assert "kind         call_start_time" in shown.output
    assert "what to do   set start_time" in shown.output


@pytest.mark.usefixtures("azure_configured")
def test_rescan_migrates_what_an_older_release_rejected(
    legacy: AzureStorage,
    migrate: Migrate,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generate.write_cases(legacy)
    history = sources.CALL_HISTORY.name

    def older_release(record: Any) -> Any:  # rejected every odd field
        row = transforms.call(record)
        if row.oddities:
            raise Unmigratable(f"{row.oddities[0]} is odd")
        return row

    with monkeypatch.context() as patched:
        patched.setitem(transforms.TRANSFORMS, history, older_release)
        assert migrate().caught_up
    key = f"{generate.C_OLD}/{generate.CALL_ODD}"
    assert _reject(conn, key) == ("end_time is odd", False)
    # Long after: the next passes read only what changed since their watermark.
    conn.execute("UPDATE migration_checkpoints SET watermark = now() + interval '1 day'")
    assert migrate().total("migrated") == 0
    assert _reject(conn, key) == ("end_time is odd", False)

    done = invoke_cli("migrate", "azure", "rescan", "--source", history)
    assert done.exit_code == 0, done.output
    assert "1 source(s) will be read again from the start at their next pass: CallHistory" in (
        done.output
    )
    run = migrate()
    assert run.caught_up and run.total("oddities") == 1
    assert _reject(conn, key) == ("end_time is odd", True)
    assert conn.execute(
        "SELECT customer_id IS NOT NULL, metadata ? 'legacy_origin' FROM calls"
        " WHERE twilio_call_sid = %s",
        (generate.CALL_ODD,),
    ).fetchone() == (True, False)
    assert invoke_cli("migrate", "azure", "rescan", "--source", "Nope").exit_code == 2


def _reject(conn: psycopg.Connection[Any], key: str) -> tuple[str, bool] | None:
    row = conn.execute(
        "SELECT reason, resolved_at IS NOT NULL FROM migration_rejects WHERE key = %s", (key,)
    ).fetchone()
    return None if row is None else (row[0], row[1])
