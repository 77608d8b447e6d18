"""The payload contract: valid calls pass, everything PostgreSQL would refuse is refused here."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.payload import CallPayload, json_schema
from tests import factories
from tests.strategies import json_values, malformed_payloads
from worker.calls.summary import stored_values
from worker.calls.validation import validate_payload
from worker.errors import PayloadInvalid, PayloadTooLarge

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "payload.schema.json"
MAX = 16 * 1024 * 1024


def test_simulated_calls_satisfy_the_contract() -> None:
    for seed in range(1, 6):
        payload, body = validate_payload(factories.payload(seed), max_bytes=MAX)
        assert payload.messages and payload.metrics and payload.rag_retrievals
        assert json.loads(body)["call_id"] == str(payload.call_id)


def test_exported_schema_is_current() -> None:
    exported = json.loads(SCHEMA_FILE.read_text())
    assert exported == json_schema(), (
        "docs/payload.schema.json is stale: run `python -m models.payload > docs/payload.schema.json`"
    )


@settings(max_examples=200, deadline=None)
@given(malformed_payloads())
def test_malformed_payloads_are_refused_with_a_reason(raw: Any) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        validate_payload(raw, max_bytes=MAX)
    assert str(refused.value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_never_crashes_validation(raw: Any) -> None:
    with contextlib.suppress(PayloadInvalid):
        validate_payload(raw, max_bytes=MAX)


@given(st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t))
def test_nul_characters_are_named_by_field(text: str) -> None:
    body = factories.small_payload(3)
    body["messages"][1]["content"] = text + "\x00"
    with pytest.raises(PayloadInvalid, match=r"payload\.messages\[1\]\.content"):
        validate_payload(body, max_bytes=MAX)


def test_oversize_payload_names_the_setting() -> None:
    with pytest.raises(PayloadTooLarge, match="CALLSTORE_MAX_PAYLOAD_BYTES=1024"):
        validate_payload(factories.payload(1), max_bytes=1024)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(0.123456789, "0.1235"), (0.00015, "0.0002"), (-0.00015, "-0.0002"), (2.5, "2.5000")],
)
def test_metric_values_are_stored_as_numeric_15_4_rounds_them(sent: float, stored: str) -> None:
    body = factories.small_payload(4)
    body["metrics"][0]["metric_type"] = "llm_ttfb"
    body["metrics"][0]["value"] = sent
    payload = CallPayload.model_validate(body)
    assert str(stored_values(payload)[0]) == stored


def test_validation_message_names_fields() -> None:
    body = factories.small_payload(5)
    del body["tenant_id"]
    body["status"] = "finished"
    with pytest.raises(PayloadInvalid) as refused:
        validate_payload(body, max_bytes=MAX)
    assert "tenant_id: Field required" in str(refused.value)
    assert "status:" in str(refused.value)
