"""``CallRecorder``: the call runtime's drop-in replacement for seed 001's ``CallStorageService``.

During a call every ``record_*`` method appends to an in-memory buffer (microseconds, no I/O),
stamping the entry with the injectable clock. When the call ends, ``finalize_and_write`` builds
the payload and hands it to ``worker.client.delivery`` from a worker thread, so the event loop
never waits on the network: published to Celery by task name (``calls.finalize`` on the
``calls`` queue), or, when the broker cannot take it, written durably to the local spool.

This module only buffers; like all of ``worker.client`` it imports no database driver and no
worker code (the import contracts in pyproject.toml hold it to that).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from models.enums import CallStatus, Direction, MessageRole, MetricType, SearchMode
from models.payload import SCHEMA_VERSION
from worker.client.delivery import Handoff, wait_for_announcements
from worker.client.publisher import Publisher
from worker.client.spool import Spool
from worker.settings import ClientSettings

__all__ = ["CallRecorder", "Clock", "utc_now", "wait_for_announcements"]

Clock = Callable[[], datetime]

#: Per-entry overhead of the JSON encoding, used to estimate a payload's size cheaply.
_ENTRY_OVERHEAD_BYTES = 160


def utc_now() -> datetime:
    return datetime.now(UTC)


def _json_value(value: Any) -> Any:
    """``value`` as plain JSON data (dates, UUIDs and decimals become strings)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(json.dumps(value, default=str))


class CallRecorder:
    """Buffers one call in memory and hands it to the workers when it ends.

    The constructor takes the same arguments as ``CallStorageService`` (without a database
    client); ``clock``, ``settings``, ``publisher`` and ``spool`` are injectable for tests.
    """

    def __init__(
        self,
        call_id: UUID | str,
        tenant_id: UUID | str,
        agent_id: UUID | str,
        agent_version: str | None = None,
        agent_name: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        twilio_call_sid: str | None = None,
        twilio_stream_sid: str | None = None,
        recording_enabled: bool = False,
        direction: str = Direction.INBOUND.value,
        *,
        clock: Clock = utc_now,
        settings: ClientSettings | None = None,
        publisher: Publisher | None = None,
        spool: Spool | None = None,
        announce: bool = True,
    ) -> None:
        self.call_id = UUID(str(call_id))
        self.tenant_id = UUID(str(tenant_id))
        self.agent_id = UUID(str(agent_id))
        self.agent_version = agent_version
        self.agent_name = agent_name
        self.from_number = from_number
        self.to_number = to_number
        self.twilio_call_sid = twilio_call_sid
        self.twilio_stream_sid = twilio_stream_sid
        self.recording_enabled = recording_enabled
        self.direction = Direction(direction).value
        self.initial_node: str | None = None
        self.final_node: str | None = None
        self.recording_sid: str | None = None
        self.recording_url: str | None = None
        self.status = CallStatus.IN_PROGRESS.value
        self.error_message: str | None = None

        self._clock = clock
        self._handoff = Handoff(settings, publisher, spool)
        self.started_at = self._now()
        self._revision = 0
        #: How the last hand-off went: "enqueued", "spooled", or None (not finalized / failed).
        self.delivery: str | None = None
        self._approx_bytes = 1024
        self._messages: list[dict[str, Any]] = []
        self._transitions: list[dict[str, Any]] = []
        self._metrics: list[dict[str, Any]] = []
        self._rag_retrievals: list[dict[str, Any]] = []
        self._variable_extractions: list[dict[str, Any]] = []
        self._interruptions: list[dict[str, Any]] = []
        self._tool_executions: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._analysis: dict[str, Any] | None = None
        if announce:
            self._handoff.announce(self._announcement())

    # -- recording ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the recorder's clock must return timezone-aware datetimes")
        return now

    def _stamp(self) -> str:
        return self._now().isoformat()

    def _grow(self, *texts: str | None) -> None:
        self._approx_bytes += _ENTRY_OVERHEAD_BYTES + sum(len(t) for t in texts if t)

    def record_message(
        self,
        role: str,
        content: str,
        node_id: str | None = None,
        turn_number: int | None = None,
        was_interrupted: bool = False,
    ) -> None:
        self._messages.append(
            {
                "sequence": len(self._messages) + 1,
                "timestamp": self._stamp(),
                "role": MessageRole(role).value,
                "content": content,
                "node_id": node_id,
                "turn_number": turn_number,
                "was_interrupted": was_interrupted,
            }
        )
        self._grow(content)

    def record_transition(
        self,
        from_node_id: str | None = None,
        to_node_id: str | None = None,
        reason: str | None = None,
        condition: str | None = None,
        turn_number: int | None = None,
        from_node_name: str | None = None,
        to_node_name: str | None = None,
    ) -> None:
        if not to_node_id:
            raise ValueError("record_transition needs to_node_id")
        self._transitions.append(
            {
                "sequence": len(self._transitions) + 1,
                "timestamp": self._stamp(),
                "from_node_id": from_node_id,
                "to_node_id": to_node_id,
                "reason": reason,
                "condition": condition,
                "turn_number": turn_number,
                "from_node_name": from_node_name,
                "to_node_name": to_node_name,
            }
        )
        self._grow()

    def record_metric(
        self,
        metric_type: MetricType | str,
        value: float,
        processor: str | None = None,
        turn_number: int | None = None,
        node_id: str | None = None,
    ) -> None:
        """Record a metric; times in seconds, tokens and characters as counts."""
        self._metrics.append(
            {
                "timestamp": self._stamp(),
                "metric_type": MetricType(metric_type).value,
                "value": float(value),
                "processor": processor,
                "turn_number": turn_number,
                "node_id": node_id,
            }
        )
        self._grow()

    def record_rag_retrieval(
        self,
        query: str,
        query_params: Mapping[str, Any] | None = None,
        chunks: Sequence[Mapping[str, Any]] | None = None,
        processing_time_ms: float | None = None,
        node_id: str | None = None,
        turn_number: int | None = None,
    ) -> None:
        params = dict(_json_value(dict(query_params or {})))
        mode = params.get("search_mode")
        top_k = params.get("top_k")
        stored_chunks = []
        for rank, chunk in enumerate(chunks or (), start=1):
            stored = {key: _json_value(value) for key, value in chunk.items()}
            stored.setdefault("chunk_rank", rank)
            stored_chunks.append(stored)
            self._grow(str(stored.get("content") or ""))
        self._rag_retrievals.append(
            {
                "query_sequence": len(self._rag_retrievals) + 1,
                "timestamp": self._stamp(),
                "query_text": query,
                "search_mode": SearchMode(mode).value if mode else None,
                "top_k": top_k if isinstance(top_k, int) else None,
                "processing_time_ms": processing_time_ms,
                "query_params": params,
                "node_id": node_id,
                "turn_number": turn_number,
                "chunks": stored_chunks,
            }
        )
        self._grow(query)

    def record_variable_extraction(
        self,
        variables_requested: Sequence[str],
        variables_extracted: Mapping[str, Any],
        success: bool,
        processing_time_ms: float | None = None,
        node_id: str | None = None,
        turn_number: int | None = None,
    ) -> None:
        self._variable_extractions.append(
            {
                "sequence": len(self._variable_extractions) + 1,
                "timestamp": self._stamp(),
                "variables_requested": [str(v) for v in variables_requested],
                "variables_extracted": _json_value(dict(variables_extracted)),
                "success": bool(success),
                "processing_time_ms": processing_time_ms,
                "node_id": node_id,
                "turn_number": turn_number,
            }
        )
        self._grow()

    def record_user_interruption(
        self, interrupted_at_turn: int | None = None, node_id: str | None = None
    ) -> None:
        self._interruptions.append(
            {
                "timestamp": self._stamp(),
                "interrupted_at_turn": interrupted_at_turn,
                "node_id": node_id,
            }
        )
        self._grow()

    def record_tool_execution(
        self,
        tool_name: str,
        request: Any = None,
        response: Any = None,
        success: bool | None = None,
        duration_ms: int | None = None,
        node_id: str | None = None,
        turn_number: int | None = None,
    ) -> None:
        self._tool_executions.append(
            {
                "sequence": len(self._tool_executions) + 1,
                "timestamp": self._stamp(),
                "tool_name": tool_name,
                "request": _json_value(request),
                "response": _json_value(response),
                "success": success,
                "duration_ms": duration_ms,
                "node_id": node_id,
                "turn_number": turn_number,
            }
        )
        self._grow(json.dumps(request, default=str), json.dumps(response, default=str))

    def record_event(self, event_type: str, event_data: Any = None) -> None:
        self._events.append(
            {
                "sequence": len(self._events) + 1,
                "timestamp": self._stamp(),
                "event_type": event_type,
                "event_data": _json_value(event_data),
            }
        )
        self._grow()

    def set_analysis(
        self,
        sentiment: str | None = None,
        sentiment_score: float | None = None,
        call_successful: bool | None = None,
        summary: str | None = None,
        topics: Sequence[str] | None = None,
        keywords_detected: Sequence[str] | None = None,
        model: str | None = None,
        analysis_data: Mapping[str, Any] | None = None,
    ) -> None:
        self._analysis = {
            "sentiment": sentiment,
            "sentiment_score": sentiment_score,
            "call_successful": call_successful,
            "summary": summary,
            "topics": list(topics or ()),
            "keywords_detected": list(keywords_detected or ()),
            "model": model,
            "analysis_data": _json_value(dict(analysis_data or {})),
        }
        self._grow(summary)

    def update_recording_info(self, recording_sid: str, recording_url: str | None = None) -> None:
        self.recording_sid = recording_sid
        self.recording_url = recording_url

    def update_status(self, status: str, error_message: str | None = None) -> None:
        self.status = CallStatus(status).value
        self.error_message = error_message

    # -- hand-off ----------------------------------------------------------------------------

    def build_payload(self) -> dict[str, Any]:
        """The call as it stands, in the shape of ``models.payload.CallPayload`` (a new revision)."""
        self._revision += 1
        now = self._stamp()
        ended = now if self.status != CallStatus.IN_PROGRESS.value else None
        return {
            "schema_version": SCHEMA_VERSION,
            "call_id": str(self.call_id),
            "revision": self._revision,
            "tenant_id": str(self.tenant_id),
            "agent_id": str(self.agent_id),
            "agent_version": self.agent_version,
            "agent_name": self.agent_name,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "twilio_call_sid": self.twilio_call_sid,
            "twilio_stream_sid": self.twilio_stream_sid,
            "recording_enabled": self.recording_enabled,
            "recording_sid": self.recording_sid,
            "recording_url": self.recording_url,
            "direction": self.direction,
            "status": self.status,
            "error_message": self.error_message,
            "started_at": self.started_at.isoformat(),
            "ended_at": ended,
            "finalized_at": now,
            "initial_node": self.initial_node,
            "final_node": self.final_node,
            "messages": list(self._messages),
            "transitions": list(self._transitions),
            "metrics": list(self._metrics),
            "rag_retrievals": list(self._rag_retrievals),
            "variable_extractions": list(self._variable_extractions),
            "interruptions": list(self._interruptions),
            "tool_executions": list(self._tool_executions),
            "events": list(self._events),
            "analysis": self._analysis,
        }

    async def finalize_and_write(
        self, status: str = CallStatus.ENDED.value, error_message: str | None = None
    ) -> bool:
        """Hand the call off; True once it is safe (enqueued, or durably spooled).

        Returns False only if the payload could be neither enqueued nor spooled; the reason is
        logged at ERROR. Calling it again later (with more data) sends a higher revision, which
        replaces the stored call.
        """
        self.update_status(status, error_message)
        payload = self.build_payload()
        self.delivery = await asyncio.to_thread(
            self._handoff.deliver, payload, approx_bytes=self._approx_bytes
        )
        return self.delivery is not None

    def _announcement(self) -> dict[str, Any]:
        """What tells the workers this call started (``calls.announce``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "call_id": str(self.call_id),
            "tenant_id": str(self.tenant_id),
            "agent_id": str(self.agent_id),
            "started_at": self.started_at.isoformat(),
        }
