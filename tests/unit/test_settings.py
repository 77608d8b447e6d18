"""Settings errors name the variable and say what is wrong, without echoing the value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.factories import make_settings
from worker.settings import describe_error


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
