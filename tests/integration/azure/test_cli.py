"""``callstore migrate azure status|run|rejects``, in process, against Azurite."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.helpers import invoke_cli
from worker.azure.client import AzureStorage
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
    assert "migrated 44, rejected 10" in done.output

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
