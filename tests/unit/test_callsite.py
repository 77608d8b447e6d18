"""Bad input fails at the call site, naming the argument; what refusing would lose is normalized.

Each case here was accepted by the recorder before and then refused by the worker, which
dead-lettered the whole call (a RAG chunk with an extra key, a NUL in a message), or broke the
hand-off itself (a lone surrogate). Seed 001's own call shapes work unchanged.
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.payload import MAX_JSON_DEPTH
from tests import factories
from worker.calls.validation import validate_payload
from worker.client.encoding import encode_json
from worker.client.recorder import CallRecorder
from worker.client.spool import Spool
from worker.errors import InvalidRecording


def _recorder(**options: Any) -> CallRecorder:
    options.setdefault("announce", False)
    options.setdefault("journal", False)
    return CallRecorder(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), **options)


def _valid(rec: CallRecorder) -> dict[str, Any]:
    body = rec.build_payload()
    validate_payload(body, max_bytes=1 << 24)
    return body


class SeedMetricType(enum.Enum):
    """Seed 001's ``app.models.database.MetricType``: a plain enum of the same values."""

    LLM_TTFB = "llm_ttfb"


def test_seed_001_call_shapes_work_unchanged() -> None:
    """The constructor and every method exactly as seed 001's guide and integration guide
    call them, ``postgres_client`` included (accepted and ignored)."""
    call_storage = CallRecorder(
        postgres_client=object(),
        call_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        agent_version="1.0.0",
        agent_name="My Agent",
        from_number="+1234567890",
        to_number="+0987654321",
        twilio_call_sid="CA123",
        twilio_stream_sid="MZ123",
        recording_enabled=True,
        direction="inbound",
        announce=False,
        journal=False,
    )
    call_storage.initial_node = "greeting"
    call_storage.record_message(
        role="user", content="Hello", node_id="greeting", turn_number=1, was_interrupted=False
    )
    call_storage.record_transition(
        from_node_id="greeting", to_node_id="main_menu", reason="workflow_transition",
        condition="always", turn_number=1, from_node_name="Greeting", to_node_name="Main Menu",
    )  # fmt: skip
    call_storage.record_metric(
        metric_type=SeedMetricType.LLM_TTFB, value=0.234, processor="OpenAILLMService",
        turn_number=1,
    )  # fmt: skip
    call_storage.record_rag_retrieval(
        query="What is GLP-1?",
        query_params={"search_mode": "hybrid", "top_k": 5, "rrf_k": 60},
        chunks=[{"chunk_id": 123, "content": "GLP-1 is a hormone...", "document_id": 45,
                 "filename": "medical_guide.pdf", "s3_key": "docs/medical_guide.pdf",
                 "chunk_index": 12, "token_count": 150, "score": 0.945}],
        processing_time_ms=245.3, node_id="info_lookup", turn_number=2,
    )  # fmt: skip
    call_storage.record_variable_extraction(
        variables_requested=["first_name", "last_name", "topic"],
        variables_extracted={"first_name": "John", "last_name": "Smith", "topic": "diabetes"},
        success=True, processing_time_ms=680.5, node_id="extract_info", turn_number=1,
    )  # fmt: skip
    call_storage.record_user_interruption(interrupted_at_turn=3, node_id="explanation")
    call_storage.update_recording_info(recording_sid="RE123", recording_url="https://x/r")
    call_storage.update_status(status="ended", error_message=None)
    call_storage.final_node = "goodbye"
    body = _valid(call_storage)
    assert body["metrics"][0]["metric_type"] == "llm_ttfb"
    assert body["initial_node"] == "greeting" and body["final_node"] == "goodbye"
    assert body["rag_retrievals"][0]["chunks"][0]["document_id"] == 45
    assert "metadata" not in body["rag_retrievals"][0]["chunks"][0]


def test_a_chunk_key_the_contract_does_not_name_is_kept_in_its_metadata() -> None:
    rec = _recorder()
    rec.record_rag_retrieval(
        "q",
        {"search_mode": "vector"},
        [
            {"chunk_id": 1, "content": "a", "score": 0.9, "page_number": 4,
             "metadata": {"source": "faq", "tags": ["x"]}},
            {"chunk_id": "2", "content": "b", "score": 1},
        ],
    )  # fmt: skip
    chunks = _valid(rec)["rag_retrievals"][0]["chunks"]
    assert chunks[0]["metadata"] == {"page_number": 4, "metadata": {"source": "faq", "tags": ["x"]}}
    assert chunks[1]["chunk_id"] == 2 and chunks[1]["chunk_rank"] == 2


def test_nul_and_lone_surrogates_become_replacement_characters_and_are_counted() -> None:
    rec = _recorder()
    rec.record_message("user", "a\x00b")
    rec.record_message("assistant", "split \ud83d")  # half an emoji from a streaming LLM
    rec.record_message("assistant", "joined \ud83d\ude00")  # both halves, one after the other
    rec.record_event("e\x00", {"k\x00": ["\udfff"]})
    rec.final_node = "n\x00"
    body = _valid(rec)
    assert [m["content"] for m in body["messages"]] == ["a\ufffdb", "split \ufffd", "joined 😀"]
    assert body["events"][0] == {**body["events"][0], "event_type": "e\ufffd",
                                 "event_data": {"k\ufffd": ["\ufffd"]}}  # fmt: skip
    assert body["final_node"] == "n\ufffd"
    assert body["replaced_characters"] == 6


def test_json_values_become_plain_json() -> None:
    rec = _recorder()
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rec.record_tool_execution(
        "t",
        request={"when": when, "id": uuid.UUID(int=1), 3: (1, 2), None: {4.5}},
        response=[math.nan, math.inf, -math.inf, 10**30],
    )
    tool = _valid(rec)["tool_executions"][0]
    assert tool["request"] == {
        "when": "2026-01-01 00:00:00+00:00",
        "id": "00000000-0000-0000-0000-000000000001",
        "3": [1, 2],
        "null": [4.5],
    }
    assert tool["response"] == ["NaN", "Infinity", "-Infinity", 10**30]


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def test_json_nested_deeper_than_the_contract_allows_is_refused_naming_the_argument() -> None:
    rec = _recorder()
    rec.record_event("ok", _nested(MAX_JSON_DEPTH))
    with pytest.raises(InvalidRecording, match=r"^event_data is nested deeper than 64"):
        rec.record_event("deep", _nested(MAX_JSON_DEPTH + 1))
    with pytest.raises(InvalidRecording, match=r"^response is nested deeper"):
        rec.record_tool_execution("t", response={"a": _nested(MAX_JSON_DEPTH)})
    with pytest.raises(InvalidRecording, match=r"^chunks\[0\]\.extra is nested deeper"):
        rec.record_rag_retrieval(
            "q", chunks=[{"chunk_id": 1, "content": "c", "score": 0, "extra": _nested(64)}]
        )
    assert len(_valid(rec)["events"]) == 1


CHUNK = {"chunk_id": 1, "content": "c", "score": 0.5}

#: (what is called, the argument the error must name at its start)
REFUSED: list[tuple[Callable[[CallRecorder], Any], str]] = [
    (lambda r: r.record_message("robot", "hi"), "role"),
    (lambda r: r.record_message("user", 42), "content"),  # type: ignore[arg-type]
    (lambda r: r.record_message("user", "hi", node_id="n" * 256), "node_id"),
    (lambda r: r.record_message("user", "hi", turn_number=-1), "turn_number"),
    (lambda r: r.record_message("user", "hi", turn_number=2**31), "turn_number"),
    (lambda r: r.record_message("user", "hi", turn_number=1.5), "turn_number"),  # type: ignore[arg-type]
    (lambda r: r.record_transition(from_node_id="a", to_node_id="b", condition="c" * 501),
     "condition"),
    (lambda r: r.record_metric("not_a_metric", 1.0), "metric_type"),
    (lambda r: r.record_metric("llm_prompt_tokens", -1), "value"),
    (lambda r: r.record_metric("llm_ttfb", math.nan), "value"),
    (lambda r: r.record_metric("llm_ttfb", 90_000.0), "value"),
    (lambda r: r.record_metric("llm_ttfb", "fast"), "value"),  # type: ignore[arg-type]
    (lambda r: r.record_rag_retrieval("q", chunks=[{"content": "c", "score": 0.1}]),
     "chunks[0].chunk_id"),
    (lambda r: r.record_rag_retrieval("q", chunks=[{**CHUNK, "score": 1.5}]), "chunks[0].score"),
    (lambda r: r.record_rag_retrieval("q", chunks=[CHUNK, {**CHUNK, "chunk_id": "abc"}]),
     "chunks[1].chunk_id"),
    (lambda r: r.record_rag_retrieval("q", chunks=[{**CHUNK, "filename": "f" * 501}]),
     "chunks[0].filename"),
    (lambda r: r.record_rag_retrieval("q", chunks=[{**CHUNK, "embedding": [0.1] * 3}]),
     "chunks[0].embedding"),
    (lambda r: r.record_rag_retrieval("q", chunks="not a list"), "chunks"),  # type: ignore[arg-type]
    (lambda r: r.record_rag_retrieval("q", query_params=["x"]), "query_params"),  # type: ignore[arg-type]
    (lambda r: r.record_rag_retrieval("q", processing_time_ms=-1), "processing_time_ms"),
    (lambda r: r.record_rag_retrieval("q", processing_time_ms=1e8), "processing_time_ms"),
    (lambda r: r.record_variable_extraction("first_name", {}, True), "variables_requested"),
    (lambda r: r.record_tool_execution("t" * 256), "tool_name"),
    (lambda r: r.record_tool_execution("t", duration_ms=2**31), "duration_ms"),
    (lambda r: r.record_event("e" * 101), "event_type"),
    (lambda r: r.set_analysis(sentiment="ecstatic"), "sentiment"),
    (lambda r: r.set_analysis(sentiment_score=1.5), "sentiment_score"),
    (lambda r: r.set_analysis(model="m" * 101), "model"),
    (lambda r: r.update_recording_info("RE" * 40), "recording_sid"),
    (lambda r: r.update_status("finished"), "status"),
    (lambda r: setattr(r, "final_node", "n" * 256), "final_node"),
    (lambda r: setattr(r, "initial_node", 7), "initial_node"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "argument"), REFUSED)
def test_a_bad_argument_is_refused_by_name_and_leaves_no_trace(
    call: Callable[[CallRecorder], Any], argument: str
) -> None:
    rec = _recorder()
    rec.record_message("user", "\x00")  # one replaced character before
    before = rec.build_payload()
    with pytest.raises(InvalidRecording) as raised:
        call(rec)
    assert str(raised.value).startswith(argument + " "), str(raised.value)
    after = rec.build_payload()
    assert {**after, "revision": 0, "finalized_at": ""} == {
        **before,
        "revision": 0,
        "finalized_at": "",
    }
    validate_payload(after, max_bytes=1 << 20)


def test_the_constructor_names_a_bad_argument() -> None:
    with pytest.raises(InvalidRecording, match=r"^tenant_id must be a UUID"):
        CallRecorder(uuid.uuid4(), "tenant-1", uuid.uuid4(), announce=False, journal=False)
    with pytest.raises(InvalidRecording, match=r"^agent_name is 256 characters long"):
        _recorder(agent_name="a" * 256)
    with pytest.raises(InvalidRecording, match=r"^direction must be one of"):
        _recorder(direction="sideways")


def test_an_unknown_search_mode_is_left_out_of_the_column_and_kept_in_the_params() -> None:
    rec = _recorder()
    rec.record_rag_retrieval("q", {"search_mode": "semantic", "top_k": True})
    retrieval = _valid(rec)["rag_retrievals"][0]
    assert retrieval["search_mode"] is None and retrieval["top_k"] is None
    assert retrieval["query_params"] == {"search_mode": "semantic", "top_k": True}


def test_a_clock_outside_the_calls_window_is_refused_at_the_call_site() -> None:
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    rec = _recorder(clock=lambda: now[0])
    now[0] += timedelta(days=3)
    with pytest.raises(InvalidRecording, match="outside the call's plausible window"):
        rec.record_message("user", "three days later")
    now[0] -= timedelta(days=3, hours=2)
    with pytest.raises(InvalidRecording, match="outside the call's plausible window"):
        rec.record_message("user", "before the start")
    assert _valid(rec)["messages"] == []


def test_the_callers_objects_can_change_after_the_call_without_changing_the_call() -> None:
    rec = _recorder()
    data = {"items": [1]}
    chunk = {"chunk_id": 1, "content": "c", "score": 0.5, "page": {"n": 1}}
    rec.record_event("e", data)
    rec.record_rag_retrieval("q", chunks=[chunk])
    data["items"].append(2)
    chunk["page"]["n"] = 2  # type: ignore[index]
    body = _valid(rec)
    assert body["events"][0]["event_data"] == {"items": [1]}
    assert body["rag_retrievals"][0]["chunks"][0]["metadata"] == {"page": {"n": 1}}


def test_a_status_finalize_cannot_take_is_handed_off_as_an_error_not_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = factories.make_settings(
        broker_url=f"redis+socket://{tmp_path}/no-redis.socket", spool_dir=tmp_path / "spool"
    )
    rec = _recorder(settings=settings)
    rec.record_message("user", "hello")
    assert asyncio.run(rec.finalize_and_write(status="finished", error_message=ValueError("x")))
    (path,) = Spool(tmp_path / "spool").paths()
    body = factories.spooled_payload(path)
    assert body["status"] == "error" and "finished" in body["error_message"]
    assert "status the contract refuses" in caplog.text
    validate_payload(body, max_bytes=1 << 20)


def test_the_encoder_falls_back_to_a_safe_encoding_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the call-site checks make impossible, the hand-off survives anyway."""
    nested: Any = "deep"
    for _ in range(5_000):
        nested = [nested]
    body = json.loads(encode_json({"content": "split \ud83d", "data": nested, "n": math.nan}))
    assert body["content"] == "split \ufffd"
    assert "nested deeper than" in json.dumps(body["data"])
    assert "not encodable as JSON" in caplog.text
