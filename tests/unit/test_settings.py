"""Settings errors name the variable and say what is wrong, without echoing the value; the
runtime client needs no database setting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.factories import make_settings
from worker.errors import ConfigurationError
from worker.settings import (
    ENV_PREFIX,
    describe_error,
    get_client_settings,
    get_settings,
)


def _error(**overrides: object) -> str:
    with pytest.raises(ValidationError) as caught:
        make_settings(**overrides)
    return describe_error(caught.value)


def test_wrong_scheme_is_named_without_the_url() -> None:
    message = _error(database_url="mysql://user:s3cret@db/callstore")
    assert message == (
        "invalid configuration: CALLSTORE_DATABASE_URL scheme 'mysql' is not one of "
        "postgresql, postgresql+psycopg, postgres"
    )
    assert "s3cret" not in message


def test_every_bad_setting_is_on_the_same_line() -> None:
    message = _error(retention_days=-1, partition_premake_months=99)
    assert "\n" not in message
    assert "CALLSTORE_RETENTION_DAYS Input should be greater than or equal to 0" in message
    assert "CALLSTORE_PARTITION_PREMAKE_MONTHS Input should be less than or equal to 36" in message


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A process with no env file and no ``CALLSTORE_*`` variable; settings read afresh."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    get_client_settings.cache_clear()
    get_settings.cache_clear()
    yield monkeypatch
    get_client_settings.cache_clear()
    get_settings.cache_clear()


def test_the_client_needs_only_the_broker(process_env: pytest.MonkeyPatch) -> None:
    process_env.setenv("CALLSTORE_BROKER_URL", "redis://broker.invalid:6379/0")
    client = get_client_settings()
    assert client.broker_url.get_secret_value() == "redis://broker.invalid:6379/0"
    assert not hasattr(client, "database_url")
    with pytest.raises(ConfigurationError, match="CALLSTORE_DATABASE_URL is required"):
        get_settings()


def test_a_bad_client_setting_is_one_line_naming_it(process_env: pytest.MonkeyPatch) -> None:
    process_env.setenv("CALLSTORE_BROKER_URL", "amqp://guest:s3cret@rabbit.invalid//")
    with pytest.raises(ConfigurationError) as caught:
        get_client_settings()
    message = str(caught.value)
    assert message == (
        "invalid configuration: CALLSTORE_BROKER_URL scheme 'amqp' is not one of "
        "redis, rediss, redis+socket"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
