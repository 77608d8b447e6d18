"""Reading one legacy property: every form the contract allows, and clear reasons otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from azure.data.tables import EdmType, EntityProperty
from hypothesis import given
from hypothesis import strategies as st

from worker.azure.oddities import Oddities, kept_json
from worker.azure.values import (
    Unmigratable,
    count,
    e164,
    extras,
    flag,
    json_object,
    json_or_text,
    last_four,
    money,
    raw_entity,
    text,
    when,
)

nanp = st.tuples(st.integers(200, 999), st.integers(200, 999), st.integers(0, 9999)).map(
    lambda t: (f"{t[0]}", f"{t[1]}", f"{t[2]:04d}")
)


@given(nanp, st.sampled_from(["({a}) {b}-{c}", "{a}.{b}.{c}", "{a}-{b}-{c}", "+1{a}{b}{c}",
                              "1 {a} {b} {c}", "+1 ({a}) {b}-{c}", "{a}{b}{c}"]))  # fmt: skip
def test_north_american_numbers_in_any_format_become_e164(
    parts: tuple[str, str, str], form: str
) -> None:
    a, b, c = parts
    assert e164(form.format(a=a, b=b, c=c), "phone") == f"+1{a}{b}{c}"


@pytest.mark.parametrize(
    "value", ["call me maybe", "123", "+0123456789", "555-1234", "++15551234567"]
)
def test_phone_numbers_that_are_not_one_are_refused(value: str) -> None:
    with pytest.raises(Unmigratable, match=r"E\.164"):
        e164(value, "phone_number")


def test_international_e164_and_missing_phone() -> None:
    assert e164("+33 6 12 34 56 78", "p") == "+33612345678"
    assert e164(None, "p") is None
    assert e164("  ", "p") is None


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-4)),
                                               timezone(timedelta(hours=5, minutes=30))])))  # fmt: skip
def test_times_as_datetime_or_iso_text_are_the_same_instant(moment: datetime) -> None:
    assert when(moment, "t") == moment
    assert when(moment.isoformat(), "t") == moment
    assert when(moment, "t").tzinfo is UTC  # type: ignore[union-attr]


def test_an_iso_time_without_offset_is_utc() -> None:
    assert when("2024-03-05T14:30:00", "t") == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert when("2024-03-05 14:30:00.5", "t") == datetime(2024, 3, 5, 14, 30, 0, 500000, tzinfo=UTC)
    assert when("2024-03-05T14:30:00Z", "t") == datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert when(None, "t") is None
    with pytest.raises(Unmigratable, match="start_time is missing"):
        when(None, "start_time", required=True)
    with pytest.raises(Unmigratable, match="not an ISO-8601 time"):
        when("yesterday", "t")
    with pytest.raises(Unmigratable, match="not a time"):
        when(12, "t")


@given(st.integers(0, 9999))
def test_last_four_read_back_as_a_number_is_zero_padded(number: int) -> None:
    assert last_four(number, "a") == f"{number:04d}"
    assert last_four(f"{number:04d}", "a") == f"{number:04d}"


@pytest.mark.parametrize("value", [12345, "12a4", -1, True, "12345"])
def test_last_four_that_is_not_four_digits_is_refused(value: object) -> None:
    with pytest.raises(Unmigratable):
        last_four(value, "account_last_4")


def test_balance_as_double_or_string() -> None:
    assert money(1234.5, "b") == Decimal("1234.50")
    assert money("1234.50", "b") == Decimal("1234.50")
    assert money(" 0 ", "b") == Decimal("0.00")
    assert money(7, "b") == Decimal("7.00")
    assert money(None, "b") is None
    for bad in ("12,50", float("nan"), "1e12", True):
        with pytest.raises(Unmigratable):
            money(bad, "balance")


def test_counts_as_int32_int64_or_digits() -> None:
    assert count(None, "d", default=0) == 0
    assert count(125, "d") == 125
    assert count("330", "d") == 330
    assert count(EntityProperty(42, EdmType.INT64), "d") == 42
    for bad in (-1, "12.5", "abc", True, 2**31):
        with pytest.raises(Unmigratable):
            count(bad, "duration_seconds")


def test_success_as_strings_or_booleans() -> None:
    assert [flag(v, "s") for v in ("True", "False", "true", True, False, None)] == [
        True, False, True, True, False, None,
    ]  # fmt: skip
    with pytest.raises(Unmigratable, match="not a boolean"):
        flag("maybe", "success")


@given(st.text())
def test_json_or_text_keeps_any_text(value: str) -> None:
    parsed, rest = json_or_text(value.replace("\x00", ""), "v")
    if rest is None and parsed is not None:
        assert json.loads(value.replace("\x00", "")) == parsed


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet=st.characters(
    blacklist_characters="\x00")), lambda inner: st.lists(inner) | st.dictionaries(st.text(
    alphabet="abc"), inner), max_leaves=10))  # fmt: skip
def test_json_round_trips(value: object) -> None:
    assert json_or_text(json.dumps(value), "v") == (value, None)


def test_cut_json_is_kept_as_text() -> None:
    cut = '{"amount": 120.5, "card": "41'
    assert json_or_text(cut, "tool_request") == (None, cut)
    assert json_or_text("NaN", "v") == (None, "NaN")  # jsonb has no NaN
    assert json_or_text("", "v") == (None, None)
    assert json_object("", "settings") == {}
    with pytest.raises(Unmigratable, match="not a JSON object"):
        json_object("[1, 2]", "settings")


def test_text_refuses_what_postgres_cannot_hold() -> None:
    with pytest.raises(Unmigratable, match="NUL"):
        text("a\x00b", "name")
    with pytest.raises(Unmigratable, match="at most 4"):
        text("12345", "x", max_length=4)
    with pytest.raises(Unmigratable, match="not a string"):
        text(12, "name")


def test_extras_and_raw_entity_keep_every_type() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    props = {"name": "x", "vip": True, "big": EntityProperty(2**40, EdmType.INT64),
             "seen": moment, "blob": b"\x00\x01", "ratio": float("inf")}  # fmt: skip
    assert extras(props, frozenset({"name"})) == {
        "vip": True, "big": 2**40, "seen": moment.isoformat(), "blob": {"base64": "AAE="},
        "ratio": "inf",
    }  # fmt: skip
    raw = json.loads(raw_entity("pk", "rk", moment, props))
    assert raw["PartitionKey"] == "pk"
    assert raw["seen"] == {"DateTime": moment.isoformat()}
    assert raw["blob"] == {"Binary": "AAE="}


def test_json_numbers_beyond_a_double_are_kept_as_text() -> None:
    assert json_or_text('{"amount": 1e999}', "tool_request") == (None, '{"amount": 1e999}')


def test_oddities_keep_what_can_be_kept_and_say_what_was_odd() -> None:
    odd = Oddities()
    assert odd.choice("status", " No_Answer", ("no_answer",), default="x") == "no_answer"
    assert odd.choice("direction", None, ("inbound",), default="inbound") == "inbound"
    assert odd.text("outcome", 4.5) == "4.5"
    assert odd.text("agent", True) == "true"
    assert odd.text("seen", datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00+00:00"
    assert odd.text("outcome", "a\x00b" * 3, max_length=4) == "abab"
    assert odd.key("organization_id", "org\x00", max_length=255) is None
    assert odd.count("duration_seconds", "12.5") is None
    assert odd.time("end_time", "") is None  # missing is not odd
    assert odd.names() == ("status", "outcome", "agent", "seen", "organization_id",
                           "duration_seconds")  # fmt: skip
    assert odd.found["outcome"]["value"] == 4.5  # the first oddity of a name keeps its value
    assert odd.found["outcome"]["problem"] == (
        "outcome is a float, not a string; kept as text; outcome contains a NUL character;"
        " dropped; outcome is 6 characters long (at most 4); cut"
    )
    assert odd.found["organization_id"] == {
        "value": "org\\u0000",
        "problem": "organization_id contains a NUL character, which PostgreSQL text cannot hold",
    }


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                    max_leaves=8))  # fmt: skip
def test_kept_json_is_always_json_that_jsonb_holds(value: object) -> None:
    def strings(found: object) -> list[str]:
        if isinstance(found, str):
            return [found]
        if isinstance(found, dict):
            return [s for k, v in found.items() for s in (*strings(k), *strings(v))]
        if isinstance(found, list):
            return [s for item in found for s in strings(item)]
        return []

    kept = kept_json(value)
    json.dumps(kept)  # JSON
    assert not any("\x00" in s for s in strings(kept))  # no NUL character left anywhere
