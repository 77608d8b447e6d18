"""Secrets stay secret when things go wrong, and Flower never starts open by accident."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from prometheus_client import generate_latest

from tests.factories import make_settings
from tests.helpers import CELERY, PROJECT_ROOT, settings_env, wait_until
from worker.log import configure_logging
from worker.monitoring.prometheus import registry_for

CALLSTORE = str(Path(sys.executable).with_name("callstore"))
DB_PASSWORD = "Db-Secret-7f3a"
REDIS_PASSWORD = "Redis-Secret-91c2"
ACCOUNT_KEY = "QXp1cmUtU2VjcmV0LWtleQ=="
SECRETS = (DB_PASSWORD, REDIS_PASSWORD, ACCOUNT_KEY)


@pytest.fixture
def unreachable() -> dict[str, str]:
    """Settings whose servers refuse connections (a port nothing listens on), with passwords."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(
        database_url=f"postgresql://callstore:{DB_PASSWORD}@127.0.0.1:{port}/callstore",
        broker_url=f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0",
        azure_connection_string=(
            f"DefaultEndpointsProtocol=https;AccountName=legacy;AccountKey={ACCOUNT_KEY};"
        ),
        log_level="DEBUG",
    )
    return settings_env(settings)


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_failed_connection_names_the_server_but_never_the_password(
    unreachable: dict[str, str], tmp_path: Path
) -> None:
    listed = _run([CALLSTORE, "dead-letter", "list"], unreachable, tmp_path)
    output = listed.stdout + listed.stderr
    assert listed.returncode == 1
    assert "connection refused" in output.lower() and "Traceback" not in output
    assert not [secret for secret in SECRETS if secret in output]


def test_a_worker_that_cannot_reach_its_broker_logs_no_password(
    unreachable: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [str(CELERY), "-A", "worker.celery_app", "worker", "--without-mingle",
             "--without-gossip", "--concurrency", "1"],
            cwd=PROJECT_ROOT, env=unreachable, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(
                lambda: "Cannot connect to" in log_path.read_text(errors="replace"),
                timeout=60,
                what="the worker to report the unreachable broker",
            )
        finally:
            worker.kill()
            worker.wait(timeout=30)
    output = log_path.read_text(errors="replace")
    assert "127.0.0.1" in output
    assert not [secret for secret in SECRETS if secret in output]


def test_the_metrics_endpoint_answers_while_redis_and_postgres_are_down(
    unreachable: dict[str, str],
) -> None:
    stream = io.StringIO()
    settings = make_settings(
        database_url=unreachable["CALLSTORE_DATABASE_URL"],
        broker_url=unreachable["CALLSTORE_BROKER_URL"],
        log_format="json",
    )
    configure_logging(settings, stream=stream)
    try:
        exposition = generate_latest(registry_for(settings, timeout=0.5)).decode()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    assert 'callstore_up{component="redis"} 0.0' in exposition
    assert 'callstore_up{component="postgres"} 0.0' in exposition
    assert 'callstore_up{component="spool"} 1.0' in exposition
    assert "callstore_queue_depth{" not in exposition, "no stale or invented values"
    assert "did not answer" in stream.getvalue()
    assert not [secret for secret in SECRETS if secret in stream.getvalue() + exposition]


def test_flower_refuses_to_start_without_users(unreachable: dict[str, str], tmp_path: Path) -> None:
    refused = _run(
        [str(CELERY), "-A", "worker.celery_app", "flower", "--port=1"], unreachable, tmp_path
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()], "one line"
    assert "CALLSTORE_FLOWER_BASIC_AUTH=user:password" in refused.stderr
