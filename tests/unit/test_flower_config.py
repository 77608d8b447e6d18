"""Flower's options come from the settings; without users it must not start."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.factories import make_settings
from worker.monitoring.flower import (
    FlowerConfigError,
    flower_options,
    flower_users,
    parse_basic_auth,
)


def test_users_are_flowers_own_comma_separated_pairs() -> None:
    assert parse_basic_auth(" ops:a:b , viewer:pw ") == ["ops:a:b", "viewer:pw"]


@pytest.mark.parametrize("value", ["", " , ", "justauser", "ops:", ":pw", "ops:pw,broken"])
def test_malformed_users_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(FlowerConfigError) as refused:
        parse_basic_auth(value)
    assert "CALLSTORE_FLOWER_BASIC_AUTH" in str(refused.value)
    assert all(part not in str(refused.value) for part in value.split(",") if len(part) > 3)


def test_without_users_flower_refuses_unless_anonymous_access_is_explicit() -> None:
    with pytest.raises(FlowerConfigError, match="CALLSTORE_FLOWER_BASIC_AUTH"):
        flower_options(make_settings())
    with pytest.raises(FlowerConfigError):
        flower_options(make_settings(flower_basic_auth=SecretStr("")))
    assert flower_options(make_settings(flower_allow_anonymous=True))["basic_auth"] == []


def test_options_carry_users_prefix_and_persistent_state(tmp_path: Path) -> None:
    options = flower_options(
        make_settings(
            flower_basic_auth=SecretStr("ops:pw"),
            flower_allow_anonymous=True,  # users win: auth stays on
            flower_url_prefix="/flower/",
            flower_db=tmp_path / "flower.db",
        )
    )
    assert options["basic_auth"] == ["ops:pw"]
    assert options["url_prefix"] == "flower"
    assert options["persistent"] is True and options["db"] == str(tmp_path / "flower.db")
    assert "result" in options["tasks_columns"].split(",")


def test_operators_and_viewers_all_sign_in_and_viewers_alone_make_a_read_only_flower() -> None:
    options = flower_options(
        make_settings(
            flower_basic_auth=SecretStr("ops:pw"), flower_viewers=SecretStr("ro:pw1, ro2:pw2")
        )
    )
    assert options["basic_auth"] == ["ops:pw", "ro:pw1", "ro2:pw2"]
    users = flower_users(make_settings(flower_viewers=SecretStr("ro:pw")))
    assert users.operators == () and users.viewers == ("ro:pw",)
    assert flower_options(make_settings(flower_viewers=SecretStr("ro:pw")))["basic_auth"] == [
        "ro:pw"
    ]


def test_malformed_viewers_are_refused_naming_their_variable() -> None:
    with pytest.raises(FlowerConfigError, match="CALLSTORE_FLOWER_VIEWERS entry 2") as refused:
        flower_users(make_settings(flower_viewers=SecretStr("ro:secret1,broken")))
    assert "secret1" not in str(refused.value)


def test_one_user_is_never_both_an_operator_and_a_viewer() -> None:
    with pytest.raises(FlowerConfigError, match="both") as refused:
        flower_users(
            make_settings(
                flower_basic_auth=SecretStr("ops:pw1"), flower_viewers=SecretStr("ops:pw2")
            )
        )
    assert "pw1" not in str(refused.value) and "pw2" not in str(refused.value)
