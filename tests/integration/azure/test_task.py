"""``migration.run_batch`` retried by Celery when Azure cannot be reached (in a real worker:
``tests/acceptance/azure/test_task_worker.py``)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from worker.dev import azurite
from worker.errors import AzureUnavailable
from worker.settings import Settings, get_settings


def test_unreachable_azure_is_retried_by_celery_then_fails_clearly(
    configured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    monkeypatch.setenv("CALLSTORE_AZURE_CONNECTION_STRING", azurite.connection_string(port, port))
    monkeypatch.setenv("CALLSTORE_AZURE_RETRY_TOTAL", "0")
    get_settings.cache_clear()

    import tasks.migration as shell

    attempts: list[int] = []
    real = shell.run_batches  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(shell, "run_batches", counted)
    outcome = shell.run_batch.apply()
    assert len(attempts) == shell.MAX_RETRIES + 1
    assert outcome.state == "FAILURE"
    assert isinstance(outcome.result, AzureUnavailable)
    assert "cannot reach Azure Storage" in str(outcome.result)
