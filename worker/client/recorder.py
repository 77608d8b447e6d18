"""``CallRecorder``: the call runtime's drop-in replacement for seed 001's ``CallStorageService``.

During a call every ``record_*``/``update_*``/``set_*`` method checks its arguments against the
payload contract (``worker.client.entries``: a clear ``InvalidRecording`` naming the argument, or
a normalization where refusing would lose data), appends the entry to an in-memory buffer
stamped by the injectable clock, and queues it for the call's journal on local disk
(``worker.client.journal``), written by a background thread: microseconds, no I/O on the event
loop. A call in progress is also checkpointed to the workers now and then
(``worker.client.checkpoints``), for when the host itself is lost.

When the call ends, ``finalize_and_write`` builds the payload and hands it to
``worker.client.delivery`` from a worker thread, so the event loop never waits on the network:
published to Celery by task name (``calls.finalize`` on the ``calls`` queue), or, when the broker
cannot take it, written durably to the local spool. Then the journal is removed. If the process
dies first, the journal is recovered as an ``interrupted`` call (``worker.client.recovery``).

Every payload's ``revision`` is the wall clock in microseconds when it was built (strictly
increasing per recorder), so the later of two finalizes wins, across processes and restarts.

This module only records; like all of ``worker.client`` it imports no database driver and no
worker code (the import contracts in pyproject.toml hold it to that).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar
from uuid import UUID

from models.enums import CallStatus, Direction, MessageRole, MetricType, Sentiment
from models.payload import MAX_CALL_SPAN, MAX_CLOCK_SKEW, SCHEMA_VERSION
from worker.client.calldata import CallData
from worker.client.checkpoints import CheckpointPlan
from worker.client.delivery import Handoff, wait_for_announcements
from worker.client.encoding import encode_json
from worker.client.entries import INT32_MAX, Entries
from worker.client.journal import (
    CHECKPOINT,
    ENTRY,
    FINAL,
    HEADER,
    SET,
    Journal,
    directory_of,
    wall_us,
)
from worker.client.keeper import keeper
from worker.client.spool import Spool
from worker.errors import InvalidRecording
from worker.settings import ClientSettings

if TYPE_CHECKING:
    from worker.client.publisher import Publisher

__all__ = ["CallRecorder", "Clock", "utc_now", "wait_for_announcements"]

logger = logging.getLogger("callstore.recorder")

Clock = Callable[[], datetime]

#: Per-entry overhead of the JSON encoding, used to estimate a payload's size cheaply.
_ENTRY_OVERHEAD_BYTES = 160
_HOST = socket.gethostname()

#: Checkpoints are handed off from here, so a slow broker delays neither the event loop nor
#: the journal's flushes.
_checkpointer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="callstore-checkpoint")

P = ParamSpec("P")
R = TypeVar("R")
V = TypeVar("V")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _all_or_nothing(
    method: Callable[Concatenate[CallRecorder, P], R],
) -> Callable[Concatenate[CallRecorder, P], R]:
    """A recording call that raises leaves no trace, not even in the replaced-character count."""

    @functools.wraps(method)
    def recording(self: CallRecorder, /, *args: P.args, **kwargs: P.kwargs) -> R:
        mark = self._entries.replaced
        try:
            return method(self, *args, **kwargs)
        except InvalidRecording:
            self._entries.replaced = mark
            raise

    return recording


class _Field(Generic[V]):
    """A call-level attribute, checked and journaled when it is set: seed 001's runtime assigns
    ``initial_node`` and ``final_node`` directly, and a bad value must fail there, not later."""

    def __init__(self, check: Callable[[Entries, Any, str], V]) -> None:
        self._check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, recorder: CallRecorder | None, owner: type | None = None) -> V:
        if recorder is None:
            return self  # type: ignore[return-value]
        value: V = recorder._data.fields[self.name]
        return value

    def __set__(self, recorder: CallRecorder, value: Any) -> None:
        mark = recorder._entries.replaced
        try:
            checked = self._check(recorder._entries, value, self.name)
        except InvalidRecording:
            recorder._entries.replaced = mark
            raise
        recorder._set_fields({self.name: checked})


def _text(limit: int | None) -> Callable[[Entries, Any, str], str | None]:
    return lambda entries, value, name: entries.optional_text(value, name, limit)


def _choice(kind: type[Enum]) -> Callable[[Entries, Any, str], str]:
    return lambda entries, value, name: str(entries.choice(value, kind, name).value)


def _uuid(value: Any, name: str) -> str:
    try:
        return str(value if isinstance(value, UUID) else UUID(str(value)))
    except ValueError:
        raise InvalidRecording(f"{name} must be a UUID, got {value!r}") from None


class CallRecorder:
    """Buffers one call in memory and on disk, and hands it to the workers when it ends.

    The constructor takes ``CallStorageService``'s arguments (seed 001), keyword or positional
    after ``call_id``. ``postgres_client`` is accepted so that seed 001's call sites work
    unchanged, and ignored: the workers write to PostgreSQL, the runtime never does. ``clock``,
    ``settings``, ``publisher`` and ``spool`` are injectable (tests, benchmarks); ``announce``
    sends the start announcement, ``journal`` keeps the per-call journal (both on by default).
    """

    agent_version = _Field(_text(100))
    agent_name = _Field(_text(255))
    from_number = _Field(_text(50))
    to_number = _Field(_text(50))
    twilio_call_sid = _Field(_text(64))
    twilio_stream_sid = _Field(_text(64))
    recording_sid = _Field(_text(64))
    recording_url = _Field(_text(None))
    direction = _Field(_choice(Direction))
    status = _Field(_choice(CallStatus))
    error_message = _Field(_text(None))
    initial_node = _Field(_text(255))
    final_node = _Field(_text(255))
    recording_enabled = _Field(lambda entries, value, name: bool(value))

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
        postgres_client: Any = None,
        clock: Clock = utc_now,
        settings: ClientSettings | None = None,
        publisher: Publisher | None = None,
        spool: Spool | None = None,
        announce: bool = True,
        journal: bool = True,
    ) -> None:
        del postgres_client  # seed 001's database client: the workers write, never the runtime
        self._entries = entries = Entries()
        self._clock = clock
        self.started_at = self._now()
        try:
            self._earliest = self.started_at - MAX_CLOCK_SKEW
            self._latest = self.started_at + MAX_CALL_SPAN
        except OverflowError:
            raise InvalidRecording(
                f"the recorder's clock reads {self.started_at.isoformat()}, out of range"
            ) from None
        self._call_id = UUID(_uuid(call_id, "call_id"))
        self._tenant_id = UUID(_uuid(tenant_id, "tenant_id"))
        self._agent_id = UUID(_uuid(agent_id, "agent_id"))
        self._data = CallData(
            fields={
                "call_id": str(self._call_id),
                "tenant_id": str(self._tenant_id),
                "agent_id": str(self._agent_id),
                "agent_version": entries.optional_text(agent_version, "agent_version", 100),
                "agent_name": entries.optional_text(agent_name, "agent_name", 255),
                "from_number": entries.optional_text(from_number, "from_number", 50),
                "to_number": entries.optional_text(to_number, "to_number", 50),
                "twilio_call_sid": entries.optional_text(twilio_call_sid, "twilio_call_sid", 64),
                "twilio_stream_sid": entries.optional_text(
                    twilio_stream_sid, "twilio_stream_sid", 64
                ),
                "recording_enabled": bool(recording_enabled),
                "recording_sid": None,
                "recording_url": None,
                "direction": entries.choice(direction, Direction, "direction").value,
                "status": CallStatus.IN_PROGRESS.value,
                "error_message": None,
                "started_at": self.started_at.isoformat(),
                "initial_node": None,
                "final_node": None,
                "replaced_characters": entries.replaced,
                "analysis": None,
            }
        )
        lists = self._data.lists
        self._messages = lists["messages"]
        self._transitions = lists["transitions"]
        self._metrics = lists["metrics"]
        self._rag_retrievals = lists["rag_retrievals"]
        self._variable_extractions = lists["variable_extractions"]
        self._interruptions = lists["interruptions"]
        self._tool_executions = lists["tool_executions"]
        self._events = lists["events"]

        self._handoff = Handoff(settings, publisher, spool)
        self._revision = 0
        self._revision_lock = threading.Lock()
        self._finalizing = False
        #: How the last hand-off went: "enqueued", "spooled", or None (not finalized / failed).
        self.delivery: str | None = None
        self._approx_bytes = 1024
        self._version = 0
        self._journaled_replaced = 0
        self._journal: Journal | None = None
        self._plan: CheckpointPlan | None = None
        self._checkpointing = False
        self._open_journal(settings, journal)
        if announce:
            self._handoff.announce(self._announcement())

    # The call's identity is fixed when the recorder is made: it names the journal and every
    # revision, so assigning another one later is refused rather than silently ignored.
    @property
    def call_id(self) -> UUID:
        return self._call_id

    @property
    def tenant_id(self) -> UUID:
        return self._tenant_id

    @property
    def agent_id(self) -> UUID:
        return self._agent_id

    def _open_journal(self, settings: ClientSettings | None, wanted: bool) -> None:
        """Start the journal and the checkpoints; a runtime without usable client settings
        records in memory only (and says so once)."""
        try:
            resolved = settings or self._handoff.settings()
        except Exception as error:  # a wrong setting surfaces at the hand-off as before
            if wanted:
                logger.warning(
                    "call journal and checkpoints off: no client settings",
                    extra={"call_id": str(self.call_id), "settings_error": str(error)},
                )
            return
        spool_dir = self._handoff.spool(resolved).directory
        if wanted:
            self._journal = Journal(
                directory_of(spool_dir),
                str(self.call_id),
                flush_seconds=resolved.journal_flush_seconds,
            )
            self._journal.append(
                {"t": HEADER, "f": dict(self._data.fields), "w": wall_us(),
                 "pid": os.getpid(), "host": _HOST, "schema_version": SCHEMA_VERSION}
            )  # fmt: skip
            weakref.finalize(self, self._journal.abandon)
            self._handoff.watch(resolved)
        if resolved.checkpoint_seconds > 0:
            self._plan = CheckpointPlan(resolved.checkpoint_seconds, started=time.monotonic())
        if self._journal is not None or self._plan is not None:
            keeper.keep(self._journal, self._tick if self._plan is not None else None)

    # -- recording ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidRecording("the recorder's clock must return timezone-aware datetimes")
        return now

    def _stamp(self) -> str:
        now = self._now()
        if not self._earliest <= now <= self._latest:
            raise InvalidRecording(
                f"the recorder's clock reads {now.isoformat()}, outside the call's plausible "
                f"window [{self._earliest.isoformat()}, {self._latest.isoformat()}]"
            )
        return now.isoformat()

    def _add(self, name: str, entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        entries.append(entry)
        self._version += 1
        journal = self._journal
        if journal is not None:
            record = {"t": ENTRY, "l": name, "e": entry, "w": wall_us()}
            if self._entries.replaced != self._journaled_replaced:
                record["x"] = self._journaled_replaced = self._entries.replaced
            journal.append(record)

    def _set_fields(self, values: dict[str, Any]) -> None:
        fields = self._data.fields
        fields.update(values)
        if self._entries.replaced != fields["replaced_characters"]:
            values["replaced_characters"] = fields["replaced_characters"] = self._entries.replaced
        self._version += 1
        if self._journal is not None:
            self._journaled_replaced = self._entries.replaced
            self._journal.append({"t": SET, "f": values, "w": wall_us()})

    def _grow(self, *texts: str | None) -> None:
        self._approx_bytes += _ENTRY_OVERHEAD_BYTES + sum(len(t) for t in texts if t)

    @_all_or_nothing
    def record_message(
        self,
        role: str,
        content: str,
        node_id: str | None = None,
        turn_number: int | None = None,
        was_interrupted: bool = False,
    ) -> None:
        e = self._entries
        entry: dict[str, Any] = {
            "sequence": len(self._messages) + 1,
            "timestamp": self._stamp(),
            "role": e.choice(role, MessageRole, "role").value,
            "content": e.text(content, "content"),
            "node_id": e.optional_text(node_id, "node_id", 255),
            "turn_number": e.optional_integer(turn_number, "turn_number"),
            "was_interrupted": bool(was_interrupted),
        }
        self._add("messages", self._messages, entry)
        self._grow(entry["content"])

    @_all_or_nothing
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
            raise InvalidRecording("record_transition needs to_node_id")
        e = self._entries
        entry: dict[str, Any] = {
            "sequence": len(self._transitions) + 1,
            "timestamp": self._stamp(),
            "from_node_id": e.optional_text(from_node_id, "from_node_id", 255),
            "to_node_id": e.text(to_node_id, "to_node_id", 255),
            "reason": e.optional_text(reason, "reason", 255),
            "condition": e.optional_text(condition, "condition", 500),
            "turn_number": e.optional_integer(turn_number, "turn_number"),
            "from_node_name": e.optional_text(from_node_name, "from_node_name", 500),
            "to_node_name": e.optional_text(to_node_name, "to_node_name", 500),
        }
        self._add("transitions", self._transitions, entry)
        self._grow()

    @_all_or_nothing
    def record_metric(
        self,
        metric_type: MetricType | Enum | str,
        value: float,
        processor: str | None = None,
        turn_number: int | None = None,
        node_id: str | None = None,
    ) -> None:
        """Record a metric; times in seconds, tokens and characters as counts."""
        e = self._entries
        kind = e.choice(metric_type, MetricType, "metric_type")
        entry: dict[str, Any] = {
            "timestamp": self._stamp(),
            "metric_type": kind.value,
            "value": e.metric_value(kind, value),
            "processor": e.optional_text(processor, "processor", 255),
            "turn_number": e.optional_integer(turn_number, "turn_number"),
            "node_id": e.optional_text(node_id, "node_id", 255),
        }
        self._add("metrics", self._metrics, entry)
        self._grow()

    @_all_or_nothing
    def record_rag_retrieval(
        self,
        query: str,
        query_params: Mapping[str, Any] | None = None,
        chunks: Sequence[Mapping[str, Any]] | None = None,
        processing_time_ms: float | None = None,
        node_id: str | None = None,
        turn_number: int | None = None,
    ) -> None:
        """Record a retrieval and its chunks. A chunk's keys beyond the contract's are kept in
        its ``metadata``; its ``chunk_rank`` defaults to its position in ``chunks``."""
        e = self._entries
        params = e.json_object(query_params, "query_params")
        top_k = params.get("top_k")
        if chunks is None:
            chunks = ()
        elif isinstance(chunks, str | bytes | Mapping) or not isinstance(chunks, Sequence):
            raise InvalidRecording(
                f"chunks must be a list of mappings, got {type(chunks).__name__}"
            )
        stored = [e.chunk(chunk, index) for index, chunk in enumerate(chunks)]
        entry: dict[str, Any] = {
            "query_sequence": len(self._rag_retrievals) + 1,
            "timestamp": self._stamp(),
            "query_text": e.text(query, "query"),
            "search_mode": e.search_mode(params.get("search_mode")),
            "top_k": top_k if type(top_k) is int and 0 <= top_k <= INT32_MAX else None,
            "processing_time_ms": e.milliseconds(processing_time_ms, "processing_time_ms"),
            "query_params": params,
            "node_id": e.optional_text(node_id, "node_id", 255),
            "turn_number": e.optional_integer(turn_number, "turn_number"),
            "chunks": stored,
        }
        self._add("rag_retrievals", self._rag_retrievals, entry)
        self._grow(entry["query_text"], *(c["content"] for c in stored))
        self._approx_bytes += _ENTRY_OVERHEAD_BYTES * len(stored)

    @_all_or_nothing
    def record_variable_extraction(
        self,
        variables_requested: Sequence[str],
        variables_extracted: Mapping[str, Any],
        success: bool,
        processing_time_ms: float | None = None,
        node_id: str | None = None,
        turn_number: int | None = None,
    ) -> None:
        e = self._entries
        entry: dict[str, Any] = {
            "sequence": len(self._variable_extractions) + 1,
            "timestamp": self._stamp(),
            "variables_requested": e.names(variables_requested, "variables_requested"),
            "variables_extracted": e.json_object(variables_extracted, "variables_extracted"),
            "success": bool(success),
            "processing_time_ms": e.milliseconds(processing_time_ms, "processing_time_ms"),
            "node_id": e.optional_text(node_id, "node_id", 255),
            "turn_number": e.optional_integer(turn_number, "turn_number"),
        }
        self._add("variable_extractions", self._variable_extractions, entry)
        self._grow()

    @_all_or_nothing
    def record_user_interruption(
        self, interrupted_at_turn: int | None = None, node_id: str | None = None
    ) -> None:
        e = self._entries
        entry: dict[str, Any] = {
            "timestamp": self._stamp(),
            "interrupted_at_turn": e.optional_integer(interrupted_at_turn, "interrupted_at_turn"),
            "node_id": e.optional_text(node_id, "node_id", 255),
        }
        self._add("interruptions", self._interruptions, entry)
        self._grow()

    @_all_or_nothing
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
        e = self._entries
        entry: dict[str, Any] = {
            "sequence": len(self._tool_executions) + 1,
            "timestamp": self._stamp(),
            "tool_name": e.text(tool_name, "tool_name", 255),
            "request": e.json(request, "request"),
            "response": e.json(response, "response"),
            "success": None if success is None else bool(success),
            "duration_ms": e.optional_integer(duration_ms, "duration_ms"),
            "node_id": e.optional_text(node_id, "node_id", 255),
            "turn_number": e.optional_integer(turn_number, "turn_number"),
        }
        self._add("tool_executions", self._tool_executions, entry)
        self._grow()
        self._approx_bytes += _json_size(entry["request"]) + _json_size(entry["response"])

    @_all_or_nothing
    def record_event(self, event_type: str, event_data: Any = None) -> None:
        e = self._entries
        entry: dict[str, Any] = {
            "sequence": len(self._events) + 1,
            "timestamp": self._stamp(),
            "event_type": e.text(event_type, "event_type", 100),
            "event_data": e.json(event_data, "event_data"),
        }
        self._add("events", self._events, entry)
        self._grow()
        self._approx_bytes += _json_size(entry["event_data"])

    @_all_or_nothing
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
        e = self._entries
        analysis: dict[str, Any] = {
            "sentiment": None if sentiment is None else e.choice(sentiment, Sentiment, "sentiment").value,
            "sentiment_score": None if sentiment_score is None else e.number(sentiment_score, "sentiment_score", -1.0, 1.0),
            "call_successful": None if call_successful is None else bool(call_successful),
            "summary": e.optional_text(summary, "summary"),
            "topics": e.names(topics, "topics"),
            "keywords_detected": e.names(keywords_detected, "keywords_detected"),
            "model": e.optional_text(model, "model", 100),
            "analysis_data": e.json_object(analysis_data, "analysis_data"),
        }  # fmt: skip
        self._set_fields({"analysis": analysis})
        self._grow(analysis["summary"])
        self._approx_bytes += _json_size(analysis["analysis_data"])

    @_all_or_nothing
    def update_recording_info(self, recording_sid: str, recording_url: str | None = None) -> None:
        e = self._entries
        self._set_fields(
            {
                "recording_sid": e.text(recording_sid, "recording_sid", 64),
                "recording_url": e.optional_text(recording_url, "recording_url"),
            }
        )

    @_all_or_nothing
    def update_status(self, status: str, error_message: str | BaseException | None = None) -> None:
        """Set the call's status; an ``error_message`` that is not a string (an exception, say)
        is stored as its text."""
        e = self._entries
        if error_message is not None and not isinstance(error_message, str):
            error_message = str(error_message)
        self._set_fields(
            {
                "status": e.choice(status, CallStatus, "status").value,
                "error_message": e.optional_text(error_message, "error_message"),
            }
        )

    # -- payloads ----------------------------------------------------------------------------

    def _next_revision(self) -> int:
        """Wall-clock microseconds, strictly increasing for this recorder (call under
        ``_revision_lock``)."""
        self._revision = max(self._revision + 1, wall_us())
        return self._revision

    def _payload(self, revision: int, status: str) -> dict[str, Any]:
        now = self._now()
        self._data.fields["replaced_characters"] = self._entries.replaced
        ended = None
        if status != CallStatus.IN_PROGRESS.value:  # a clock gone back ends the call at its start
            ended = (self.started_at if now < self._earliest else now).isoformat()
        return self._data.payload(
            revision=revision, status=status, ended_at=ended, finalized_at=now.isoformat()
        )

    def build_payload(self) -> dict[str, Any]:
        """The call as it stands, in the shape of ``models.payload.CallPayload`` (a new
        revision)."""
        with self._revision_lock:
            return self._payload(self._next_revision(), self._data.fields["status"])

    async def finalize_and_write(
        self,
        status: str = CallStatus.ENDED.value,
        error_message: str | BaseException | None = None,
    ) -> bool:
        """Hand the call off; True once it is safe elsewhere (enqueued, or durably spooled).

        Never raises because of the call's content, and never returns without enqueuing or
        spooling because of it: a ``status`` the contract refuses is logged at ERROR and the
        call handed off with status ``error`` and the reason in ``error_message``.

        False means the call could be neither enqueued nor spooled (broker down and spool not
        writable; the reason is logged at ERROR). It is not lost: it stays in this call's
        journal, and calling ``finalize_and_write`` again retries; if this recorder is dropped
        instead, or the process ends, the journal is recovered with the status given here.
        Calling it again after True (with more data) sends a later revision, which replaces
        the stored call.
        """
        try:
            payload = self._final_payload(status, error_message)
        except Exception:  # a bug: the call stays in its journal
            logger.exception("call not handed off", extra={"call_id": str(self.call_id)})
            return False
        self.delivery = await asyncio.to_thread(self._deliver_final, payload)
        return self.delivery is not None

    def _final_payload(self, status: str, error_message: Any) -> dict[str, Any]:
        try:
            self.update_status(status, error_message)
        except InvalidRecording as error:
            logger.error(
                "finalize_and_write given a status the contract refuses; handed off as error",
                extra={"call_id": str(self.call_id), "error": str(error)},
            )
            self.update_status(CallStatus.ERROR.value, f"finalize_and_write: {error}")
        with self._revision_lock:
            self._finalizing = True
            payload = self._payload(self._next_revision(), self._data.fields["status"])
        if self._journal is not None:
            self._journal.append(
                {"t": FINAL, "status": payload["status"], "ended_at": payload["ended_at"],
                 "w": wall_us()}
            )  # fmt: skip
        return payload

    def _deliver_final(self, payload: dict[str, Any]) -> str | None:
        delivery = self._handoff.deliver(payload, approx_bytes=self._approx_bytes)
        journal = self._journal
        if delivery is not None and journal is not None:
            self._journal = None
            journal.remove()
            keeper.forget(journal)
        return delivery

    # -- checkpoints -------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        """The keeper's tick (its thread): start a checkpoint when one is due."""
        plan = self._plan
        if plan is None or self._finalizing or self._checkpointing:
            return
        if plan.due(now, self._approx_bytes, self._version):
            self._checkpointing = True
            _checkpointer.submit(self._checkpoint, now)

    def _checkpoint(self, started: float) -> None:
        """Hand off the call in progress as a revision of its own (an executor thread). The
        journal notes it first, so a recovered journal always outranks its checkpoints."""
        try:
            plan = self._plan
            with self._revision_lock:
                if self._finalizing or plan is None:
                    return
                version, size = self._version, self._approx_bytes
                payload = self._payload(self._next_revision(), CallStatus.IN_PROGRESS.value)
            journal = self._journal
            if journal is not None:
                journal.append({"t": CHECKPOINT, "r": payload["revision"], "w": wall_us()})
                journal.flush()
            if self._handoff.deliver(payload, approx_bytes=size) is not None:
                plan.sent(started, size, version)
        except Exception:  # a checkpoint must never disturb the call
            logger.exception("call checkpoint failed", extra={"call_id": str(self.call_id)})
        finally:
            self._checkpointing = False

    @property
    def revision(self) -> int:
        """The revision of the last payload built (finalized or checkpointed); 0 before any."""
        return self._revision

    @property
    def checkpoints(self) -> int:
        """Checkpoints handed off so far."""
        return 0 if self._plan is None else self._plan.count

    def _announcement(self) -> dict[str, Any]:
        """What tells the workers this call started (``calls.announce``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "call_id": str(self.call_id),
            "tenant_id": str(self.tenant_id),
            "agent_id": str(self.agent_id),
            "started_at": self.started_at.isoformat(),
        }


def _json_size(value: Any) -> int:
    """The encoded size of a JSON value (small ones are not worth encoding)."""
    if value is None or isinstance(value, bool | int | float):
        return 8
    if isinstance(value, str):
        return len(value) + 2
    return len(encode_json(value))
