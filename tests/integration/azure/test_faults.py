"""Azure throttling or unreachable: retried, then a clear error; the checkpoint never moves."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from tests.azure_fixtures import FAST_RETRY, Migrate
from worker.azure.batch import run_batches
from worker.azure.client import AzureStorage
from worker.dev import azurite
from worker.dev import legacy_data as generate
from worker.errors import AzureUnavailable
from worker.settings import Settings


class FlakyProxy:
    """An HTTP proxy in front of Azurite's table service that answers the first ``failures``
    requests itself with ``status`` (what a throttled storage account answers)."""

    def __init__(self, upstream_port: int, *, failures: int, status: int) -> None:
        self.failures = failures
        self.status = status
        self.refused = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    refuse = proxy.refused < proxy.failures
                    proxy.refused += refuse
                    proxy.forwarded += not refuse
                if refuse:
                    message = b'{"odata.error":{"code":"ServerBusy","message":{"value":"busy"}}}'
                    self.send_response(proxy.status)
                    self.send_header("x-ms-error-code", "ServerBusy")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(message)))
                    self.end_headers()
                    self.wfile.write(message)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def filled(legacy: AzureStorage) -> AzureStorage:
    generate.write_cases(legacy)
    return legacy


def _proxy(server: azurite.Azurite, **kwargs: Any) -> Iterator[tuple[FlakyProxy, AzureStorage]]:
    proxy = FlakyProxy(server.table_port, **kwargs)
    storage = AzureStorage(azurite.connection_string(server.blob_port, proxy.port), FAST_RETRY)
    yield proxy, storage
    storage.close()
    proxy.close()


def _nothing_moved(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT count(*) FROM migration_checkpoints").fetchone()
    calls = conn.execute("SELECT count(*) FROM calls").fetchone()
    return row == (0,) and calls == (0,)


@pytest.mark.usefixtures("filled")
@pytest.mark.parametrize("status", [503, 429])
def test_throttling_is_retried_by_the_sdk(
    azurite_server: azurite.Azurite, migrate: Migrate, status: int
) -> None:
    for proxy, storage in _proxy(azurite_server, failures=2, status=status):
        migrate.storage = storage
        assert migrate().caught_up
        assert proxy.refused == 2
        assert proxy.forwarded > 0


@pytest.mark.usefixtures("filled")
def test_throttling_that_lasts_is_a_clear_transient_error(
    azurite_server: azurite.Azurite, migrate: Migrate, conn: psycopg.Connection[Any]
) -> None:
    for proxy, storage in _proxy(azurite_server, failures=10_000, status=503):
        migrate.storage = storage
        with pytest.raises(AzureUnavailable) as raised:
            migrate()
        message = str(raised.value)
        assert "throttled the migration (HTTP 503" in message
        assert "reading table CustomerData" in message
        assert "retried from its checkpoint" in message
        assert proxy.refused == FAST_RETRY.total + 1
    assert _nothing_moved(conn)


@pytest.mark.usefixtures("filled")
def test_unreachable_azure_is_a_clear_transient_error(
    azure_settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens there any more
    settings = azure_settings.model_copy(
        update={"azure_connection_string": SecretStr(azurite.connection_string(port, port))}
    )
    with pytest.raises(AzureUnavailable, match="cannot reach Azure Storage") as raised:
        run_batches(settings, clock=lambda: datetime.now(UTC), engine=engine)
    assert "reading container behavioral-configs" in str(raised.value)
    assert "AccountKey" not in str(raised.value)
    assert _nothing_moved(conn)
