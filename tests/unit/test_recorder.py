"""CallRecorder: cheap in-memory recording, a faithful payload, and a safe hand-off."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from models.enums import MetricType
from tests import factories
from worker.calls.validation import validate_payload
from worker.client.recorder import CallRecorder
from worker.client.spool import Spool


class StepClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _recorder(*, call_id: uuid.UUID | None = None, **options: Any) -> CallRecorder:
    options.setdefault("announce", False)
    options.setdefault("journal", False)
    return CallRecorder(
        call_id or uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        agent_name="Alex",
        direction="outbound",
        **options,
    )


def test_entries_are_stamped_by_the_injected_clock_and_numbered() -> None:
    clock = StepClock()
    rec = _recorder(clock=clock)
    rec.initial_node = "greeting"
    rec.record_message("user", "hello", node_id="greeting", turn_number=1)
    rec.record_message("assistant", "hi", node_id="greeting", turn_number=1)
    rec.record_metric(MetricType.LLM_TTFB, 0.25, processor="llm", turn_number=1)
    rec.record_metric("tts_characters", 42)
    rec.record_transition(from_node_id="greeting", to_node_id="menu", reason="next")
    rec.record_rag_retrieval(
        "q", {"search_mode": "hybrid", "top_k": 2}, [{"chunk_id": 1, "content": "c", "score": 0.5}]
    )
    rec.final_node = "menu"
    rec.update_status("ended")
    body = rec.build_payload()
    assert body["started_at"] == "2026-01-31T23:59:59+00:00"
    assert [m["sequence"] for m in body["messages"]] == [1, 2]
    assert body["messages"][1]["timestamp"] == "2026-02-01T00:00:01+00:00"  # crosses a month
    assert body["rag_retrievals"][0]["search_mode"] == "hybrid"
    assert body["rag_retrievals"][0]["chunks"][0]["chunk_rank"] == 1
    assert body["initial_node"] == "greeting" and body["final_node"] == "menu"
    payload, _ = validate_payload(body, max_bytes=1 << 20)
    assert payload.ended_at is not None


def test_a_revision_is_the_wall_clock_in_microseconds_and_always_grows() -> None:
    """Not the injectable clock (a simulated call is in 2026-01): the real time of the build."""
    rec = _recorder(clock=StepClock())
    before = time.time_ns() // 1000
    revisions = [rec.build_payload()["revision"] for _ in range(50)]
    assert before <= revisions[0] <= time.time_ns() // 1000
    assert revisions == sorted(set(revisions))
    assert rec.revision == revisions[-1]


def test_the_later_of_two_recorders_for_one_call_has_the_higher_revision() -> None:
    """A restarted runtime, or another component ending the call: the later finalize wins."""
    call_id = uuid.uuid4()
    first = _recorder(call_id=call_id)
    second = _recorder(call_id=call_id)
    early = first.build_payload()["revision"]
    late = second.build_payload()["revision"]
    assert late > early


def test_bad_input_fails_at_the_call_site() -> None:
    rec = _recorder()
    with pytest.raises(ValueError, match="not_a_metric"):
        rec.record_metric("not_a_metric", 1.0)
    with pytest.raises(ValueError, match="robot"):
        rec.record_message("robot", "beep")
    with pytest.raises(ValueError, match="to_node_id"):
        rec.record_transition(from_node_id="a")
    with pytest.raises(ValueError, match="timezone-aware"):
        _recorder(clock=lambda: datetime(2026, 1, 1))


def test_non_json_values_become_json() -> None:
    rec = _recorder()
    rec.record_tool_execution(
        "t", request={"when": datetime(2026, 1, 1, tzinfo=UTC), "id": uuid.UUID(int=1)}
    )
    request = rec.build_payload()["tool_executions"][0]["request"]
    assert request == {
        "when": "2026-01-01 00:00:00+00:00",
        "id": "00000000-0000-0000-0000-000000000001",
    }


def test_unreachable_broker_spools_the_call(tmp_path: Path) -> None:
    settings = factories.make_settings(
        broker_url=f"redis+socket://{tmp_path}/no-redis.socket", spool_dir=tmp_path / "spool"
    )
    rec = factories.recorder(2, settings=settings)
    assert asyncio.run(rec.finalize_and_write(status="ended")) is True
    files = Spool(tmp_path / "spool").paths()
    assert len(files) == 1 and str(rec.call_id) in files[0].name


def test_returns_false_only_when_neither_broker_nor_spool_take_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings = factories.make_settings(
        broker_url=f"redis+socket://{tmp_path}/no-redis.socket", spool_dir=blocker / "spool"
    )
    rec = factories.recorder(3, settings=settings)
    assert asyncio.run(rec.finalize_and_write(status="error", error_message="boom")) is False
    assert "neither enqueued nor spooled" in caplog.text
