"""Log lines are structured and never carry secrets, phone numbers or call content."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import make_settings, payload
from worker.client.publisher import arguments_repr, keywords_repr
from worker.log import configure_logging, get_logger, scrub

DB_PASSWORD = "db-Pa55word"
ACCOUNT_KEY = "c2VjcmV0LWtleQ=="
CALL_ID = "0190c7a0-0000-7000-8000-000000000001"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(make_settings(log_format="json", log_level="DEBUG"), stream=stream)
    yield stream
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def _parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_secrets_and_personal_data_never_reach_a_line(lines: io.StringIO) -> None:
    url = f"postgresql://callstore:{DB_PASSWORD}@db:5432/callstore"
    azure = f"DefaultEndpointsProtocol=https;AccountName=legacy;AccountKey={ACCOUNT_KEY};"
    get_logger("callstore.test").info(
        "connecting to %s",
        database_url=url,
        target=url,
        azure=azure,
        from_number="+15551234567",
        details={"to_number": "+18005550100", "note": "caller +15557654321 asked"},
        content="I want to cancel my card",
    )
    try:
        raise ConnectionError(f"could not reach {url} with {azure}")
    except ConnectionError:
        logging.getLogger("azure.storage").exception("migration batch failed for %s", url)

    output = lines.getvalue()
    for secret in (DB_PASSWORD, ACCOUNT_KEY, "5551234567", "8005550100", "5557654321", "cancel"):
        assert secret not in output
    first, second = _parsed(lines)
    assert first["database_url"] == "[redacted]" and first["content"] == "[redacted]"
    assert first["target"] == "postgresql://callstore:***@db:5432/callstore"
    assert first["details"]["note"] == "caller [phone] asked"
    assert second["level"] == "error" and "ConnectionError" in second["exception"]


def test_task_context_is_on_every_line_including_the_standard_librarys(
    lines: io.StringIO,
) -> None:
    structlog.contextvars.bind_contextvars(task_id="t-1", task="calls.finalize", call_id=CALL_ID)
    get_logger("callstore.finalize").info("call finalized", rows=12)
    logging.getLogger("kombu").warning("connection lost")
    assert [(line["task_id"], line["call_id"], line["task"]) for line in _parsed(lines)] == [
        ("t-1", CALL_ID, "calls.finalize")
    ] * 2


def test_celerys_own_task_lines_get_the_same_fields_and_never_quote_a_body(
    lines: io.StringIO,
) -> None:
    received = {"id": "t-2", "name": "calls.finalize", "args": f"<call {CALL_ID} revision 3>"}
    logging.getLogger("celery.worker.strategy").info(
        "Task %(name)s[%(id)s] received", received, extra={"data": received}
    )
    body = json.dumps(payload(5))
    logging.getLogger("celery.worker.consumer.consumer").error(
        "Received invalid task message: %s\nThe message has been ignored and discarded.\n\n"
        "The full contents of the message body was:\n%s\n",
        "bad",
        body,
    )
    first, second = _parsed(lines)
    assert (first["task_id"], first["task"], first["call_id"]) == ("t-2", "calls.finalize", CALL_ID)
    assert "data" not in first
    assert second["event"].endswith("(message body not logged)")
    assert payload(5)["call_id"] not in lines.getvalue()


@given(
    # What a URL can carry as a password: printable ASCII, with "@" and "/" percent-encoded.
    password=st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="@/"), min_size=1
    ),
    digits=st.integers(10_000_000, 999_999_999_999_999),
)
def test_scrub_removes_any_url_password_and_phone_number(password: str, digits: int) -> None:
    text = f"redis://user:{password}@cache:6379/0 called +{digits} today"
    cleaned = scrub(text)
    assert f":{password}@" not in cleaned
    assert f"+{digits}" not in cleaned
    assert cleaned.startswith("redis://user:***@cache:6379/0")


def test_task_arguments_are_shown_by_identity_never_by_content() -> None:
    body = payload(6)
    shown = arguments_repr([body])
    assert shown == f"<call {body['call_id']} revision {body['revision']}>"
    assert body["from_number"] not in shown
    assert arguments_repr([]) == "()"
    assert arguments_repr([2]) == "(2,)"
    assert arguments_repr(["anything"]) == "<1 argument(s)>"
    assert keywords_repr({"batch_size": 5, "note": "secret"}) == "{'batch_size': 5, 'note': '...'}"
