"""The payload contract between the call runtime and the workers (``calls.finalize``).

The runtime builds it (``worker.client.recorder``), the worker validates it again before touching the
database, and ``docs/payload.schema.json`` is its JSON Schema export (a test keeps it current).
Everything PostgreSQL would refuse is refused here first, with a message naming the field, so
a bad payload is dead-lettered with a clear reason instead of failing inside a transaction.

Compatibility: ``schema_version`` changes only for incompatible changes; adding an optional
field is compatible. Workers are deployed before runtimes so they always know the newest version.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    model_validator,
)

from models.enums import CallStatus, Direction, MessageRole, MetricType, SearchMode, Sentiment

SCHEMA_VERSION = 1
TASK_NAME = "calls.finalize"
ANNOUNCE_TASK_NAME = "calls.announce"
QUEUE = "calls"

#: Entries may be stamped slightly before ``started_at`` (clock skew between components) ...
MAX_CLOCK_SKEW = timedelta(hours=1)
#: ... and no entry of a real call is this long after it started. The bound also keeps a broken
#: clock from creating partitions for far-away months.
MAX_CALL_SPAN = timedelta(days=2)

#: Metric types measured in seconds; the others are counts.
TIME_METRICS = frozenset(
    {
        MetricType.STT_DELAY,
        MetricType.USER_TO_BOT_LATENCY,
        MetricType.TRANSCRIPT_LLM_GAP,
        MetricType.RAG_PROCESSING_TIME,
        MetricType.VARIABLE_EXTRACTION_TIME,
        MetricType.LLM_TTFB,
        MetricType.LLM_PROCESSING_TIME,
        MetricType.LLM_TO_TTS_GAP,
        MetricType.TOTAL_PIPELINE_TIME,
    }
)
MAX_TIME_METRIC_SECONDS = 86_400.0
#: Dimensions of a chunk embedding (``call_rag_chunks.embedding``; the platform's model, seed 003).
EMBEDDING_DIMENSIONS = 1536
MAX_COUNT_METRIC = 1_000_000_000.0
#: Deepest nesting of a JSON-valued field (a tool's request or response, an event's data, ...),
#: counted in arrays and objects: ``1`` is 0 levels deep, ``{"a": [1]}`` 2. Deeper values are
#: refused, by the runtime at the call site and by the worker, before anything recurses over them:
#: every decoder, encoder and pickler on the way recurses over a payload, and this bound keeps all
#: of them far from a recursion limit.
MAX_JSON_DEPTH = 64

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


def _quantizer(places: int, *, below: Decimal | None = None) -> Any:
    """Round as PostgreSQL does (half away from zero) to ``places`` decimals; with ``below``,
    refuse a value that reaches it once rounded (99999999.996 becomes 100000000.00, which a
    ``numeric(10,2)`` column cannot hold)."""
    step = Decimal(1).scaleb(-places)

    def quantize(value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("must be a finite number")
        rounded = value.quantize(step, rounding=ROUND_HALF_UP)
        if below is not None and rounded >= below:
            raise ValueError(f"{value} rounds to {rounded}, which its column cannot hold")
        return rounded

    return AfterValidator(quantize)


def _bounded_depth(value: Any) -> Any:
    """Refuse JSON nested more than ``MAX_JSON_DEPTH`` levels, walking it without recursion
    (before pydantic, or anything else, recurses over it)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
        pending.extend((child, depth + 1) for child in children)
    return value


def _blank_is_absent(value: Any) -> Any:
    """An empty identifier is no identifier (stored as NULL, so unique indexes ignore it)."""
    return None if isinstance(value, str) and not value.strip() else value


#: A JSON value of any shape, at most ``MAX_JSON_DEPTH`` levels deep.
BoundedJson = Annotated[JsonValue, BeforeValidator(_bounded_depth)]
#: A JSON object, at most ``MAX_JSON_DEPTH`` levels deep.
BoundedJsonObject = Annotated[dict[str, JsonValue], BeforeValidator(_bounded_depth)]
Int32 = Annotated[int, Field(ge=0, le=_INT32_MAX)]
#: A 1-based position (``sequence``, ``chunk_rank``): what an ``int4`` column holds.
Position = Annotated[int, Field(ge=1, le=_INT32_MAX)]
BigId = Annotated[int, Field(ge=0, le=_INT64_MAX)]
Str16 = Annotated[str, Field(max_length=16)]
Str50 = Annotated[str, Field(max_length=50)]
Str64 = Annotated[str, Field(max_length=64)]
Str100 = Annotated[str, Field(max_length=100)]
Str255 = Annotated[str, Field(max_length=255)]
Str500 = Annotated[str, Field(max_length=500)]
Str1000 = Annotated[str, Field(max_length=1000)]
#: A Twilio SID: an empty one is absent.
Sid = Annotated[Str64 | None, BeforeValidator(_blank_is_absent)]
_MILLISECONDS_LIMIT = Decimal("100000000")  # numeric(10,2)
Milliseconds = Annotated[
    Decimal, Field(ge=0, lt=_MILLISECONDS_LIMIT), _quantizer(2, below=_MILLISECONDS_LIMIT)
]
Score = Annotated[Decimal, Field(ge=0, le=1), _quantizer(4)]
SignedScore = Annotated[Decimal, Field(ge=-1, le=1), _quantizer(4)]
#: A metric value as the runtime sent it. It is stored as ``numeric(15,4)``: the worker rounds
#: it (half away from zero, as PostgreSQL does) when it builds the rows, in one tight loop — a
#: pydantic validator per value costs more than the rest of a call's validation together.
MetricValue = float


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MessageEntry(_Entry):
    sequence: Position
    timestamp: AwareDatetime
    role: MessageRole
    content: str
    node_id: Str255 | None = None
    turn_number: Int32 | None = None
    was_interrupted: bool = False


class TransitionEntry(_Entry):
    sequence: Position
    timestamp: AwareDatetime
    from_node_id: Str255 | None = None
    to_node_id: Str255
    reason: Str255 | None = None
    condition: Str500 | None = None
    turn_number: Int32 | None = None
    from_node_name: Str500 | None = None
    to_node_name: Str500 | None = None


class MetricEntry(_Entry):
    timestamp: AwareDatetime
    metric_type: MetricType
    value: MetricValue
    processor: Str255 | None = None
    turn_number: Int32 | None = None
    node_id: Str255 | None = None


class RagChunk(_Entry):
    chunk_rank: Position
    chunk_id: BigId
    content: str
    document_id: BigId | None = None
    filename: Str500 | None = None
    s3_key: Str1000 | None = None
    chunk_index: Int32 | None = None
    token_count: Int32 | None = None
    score: Score
    embedding: (
        Annotated[
            list[float], Field(min_length=EMBEDDING_DIMENSIONS, max_length=EMBEDDING_DIMENSIONS)
        ]
        | None
    ) = None
    embedding_model: Str100 | None = None
    #: Keys of the chunk dict the contract does not name (``page_number``, a retriever's own
    #: ``metadata``, ...), kept by name rather than refused: real retrieval pipelines add them.
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class RagRetrievalEntry(_Entry):
    query_sequence: Position
    timestamp: AwareDatetime
    query_text: str
    search_mode: SearchMode | None = None
    top_k: Int32 | None = None
    processing_time_ms: Milliseconds | None = None
    query_params: BoundedJsonObject = Field(default_factory=dict)
    node_id: Str255 | None = None
    turn_number: Int32 | None = None
    chunks: list[RagChunk] = Field(default_factory=list)


class VariableExtractionEntry(_Entry):
    sequence: Position
    timestamp: AwareDatetime
    variables_requested: list[str] = Field(default_factory=list)
    variables_extracted: BoundedJsonObject = Field(default_factory=dict)
    success: bool
    processing_time_ms: Milliseconds | None = None
    node_id: Str255 | None = None
    turn_number: Int32 | None = None


class InterruptionEntry(_Entry):
    timestamp: AwareDatetime
    interrupted_at_turn: Int32 | None = None
    node_id: Str255 | None = None


class ToolExecutionEntry(_Entry):
    sequence: Position
    timestamp: AwareDatetime
    tool_name: Str255
    request: BoundedJson = None
    response: BoundedJson = None
    success: bool | None = None
    duration_ms: Int32 | None = None
    node_id: Str255 | None = None
    turn_number: Int32 | None = None


class EventEntry(_Entry):
    sequence: Position
    timestamp: AwareDatetime
    event_type: Str100
    event_data: BoundedJson = None


class Analysis(_Entry):
    sentiment: Sentiment | None = None
    sentiment_score: SignedScore | None = None
    call_successful: bool | None = None
    summary: str | None = None
    topics: list[str] = Field(default_factory=list)
    keywords_detected: list[str] = Field(default_factory=list)
    model: Str100 | None = None
    analysis_data: BoundedJsonObject = Field(default_factory=dict)


#: The payload's lists whose entries carry a ``sequence`` that must be unique within the call.
SEQUENCED_FIELDS: tuple[str, ...] = ("messages", "transitions", "tool_executions", "events")

#: The payload's lists whose entries carry a ``timestamp``.
TIMELINE_FIELDS: tuple[str, ...] = (
    "messages",
    "transitions",
    "metrics",
    "rag_retrievals",
    "variable_extractions",
    "interruptions",
    "tool_executions",
    "events",
)


_TIMESTAMP = attrgetter("timestamp")


def _field_range(entries: list[Any]) -> tuple[datetime, datetime]:
    """The earliest and the latest ``timestamp`` of ``entries`` (not empty).

    Each parsed datetime has a ``tzinfo`` object of its own, so every comparison asks both for
    their offsets (0.3 µs): ``sorted`` compares a list already in order, as a call's timeline
    is, once per entry, where ``min`` and ``max`` compare twice and a Python loop costs more."""
    stamps = sorted(map(_TIMESTAMP, entries))
    return stamps[0], stamps[-1]


class CallPayload(BaseModel):
    """Everything the runtime buffered about one call, as handed to ``calls.finalize``.

    ``revision`` orders the payloads of the same call: a payload replaces what is stored only
    when its revision is higher, which makes redelivery and late arrivals harmless. The runtime
    stamps it with the wall clock in microseconds since the Unix epoch when it builds the
    payload, so the later of two finalizes wins across processes and restarts; a checkpoint
    (``status`` ``in_progress``) is replaced by the next one and by the final payload.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    schema_version: Literal[1] = 1
    call_id: UUID
    revision: Annotated[int, Field(ge=1, le=_INT64_MAX)] = 1
    tenant_id: UUID
    agent_id: UUID
    agent_version: Str100 | None = None
    agent_name: Str255 | None = None
    from_number: Str50 | None = None
    to_number: Str50 | None = None
    twilio_call_sid: Sid = None
    twilio_stream_sid: Sid = None
    recording_enabled: bool = False
    recording_sid: Str64 | None = None
    recording_url: str | None = None
    direction: Direction = Direction.INBOUND
    status: CallStatus
    error_message: str | None = None
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    finalized_at: AwareDatetime
    initial_node: Str255 | None = None
    final_node: Str255 | None = None
    #: Characters of the call's text the runtime stored as U+FFFD: NUL characters (PostgreSQL
    #: cannot store them) and lone UTF-16 surrogates (a split emoji from a streaming STT or LLM).
    replaced_characters: Int32 = 0

    messages: list[MessageEntry] = Field(default_factory=list)
    transitions: list[TransitionEntry] = Field(default_factory=list)
    metrics: list[MetricEntry] = Field(default_factory=list)
    rag_retrievals: list[RagRetrievalEntry] = Field(default_factory=list)
    variable_extractions: list[VariableExtractionEntry] = Field(default_factory=list)
    interruptions: list[InterruptionEntry] = Field(default_factory=list)
    tool_executions: list[ToolExecutionEntry] = Field(default_factory=list)
    events: list[EventEntry] = Field(default_factory=list)
    analysis: Analysis | None = None

    #: Per timeline field with entries, its earliest and latest timestamp (set by validation).
    _stamp_ranges: dict[str, tuple[datetime, datetime]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _metric_values_in_range(self) -> CallPayload:
        """Times within a day either way, counts between 0 and a billion: what the summary
        columns can hold. One loop for all metrics (a validator per entry is much slower)."""
        for index, metric in enumerate(self.metrics):
            if metric.metric_type in TIME_METRICS:
                if not -MAX_TIME_METRIC_SECONDS <= metric.value <= MAX_TIME_METRIC_SECONDS:
                    raise ValueError(
                        f"metrics[{index}].value: {metric.metric_type.value} is in seconds and "
                        f"must be within ±{MAX_TIME_METRIC_SECONDS:g}, got {metric.value}"
                    )
            elif not 0 <= metric.value <= MAX_COUNT_METRIC:
                raise ValueError(
                    f"metrics[{index}].value: {metric.metric_type.value} is a count and must be "
                    f"between 0 and {MAX_COUNT_METRIC:g}, got {metric.value}"
                )
        return self

    @model_validator(mode="after")
    def _times_are_plausible(self) -> CallPayload:
        try:
            earliest = self.started_at - MAX_CLOCK_SKEW
            latest = self.started_at + MAX_CALL_SPAN
        except OverflowError:  # year 1 or 9999: no window around it exists
            raise ValueError(
                f"started_at {self.started_at.isoformat()} is too close to the end of the "
                "calendar for a call"
            ) from None
        if self.ended_at is not None:
            if self.ended_at < earliest:
                raise ValueError("ended_at is before started_at")
            seconds = (self.ended_at - self.started_at).total_seconds()
            if seconds > _INT32_MAX:
                raise ValueError(
                    f"ended_at: the call would last {seconds:.0f} s, more than its "
                    "duration_seconds column holds"
                )
        self._stamp_ranges = ranges = {
            name: _field_range(entries)
            for name in TIMELINE_FIELDS
            if (entries := getattr(self, name))
        }
        if all(earliest <= low and high <= latest for low, high in ranges.values()):
            return self
        for name in TIMELINE_FIELDS:  # the first entry outside, named
            for index, entry in enumerate(getattr(self, name)):
                stamp = entry.timestamp
                if not earliest <= stamp <= latest:
                    raise ValueError(
                        f"{name}[{index}].timestamp {stamp.isoformat()} is outside the call's "
                        f"plausible window [{earliest.isoformat()}, {latest.isoformat()}]"
                    )
        return self

    @model_validator(mode="after")
    def _sequences_are_unique(self) -> CallPayload:
        for name in SEQUENCED_FIELDS:
            seen: dict[int, int] = {}
            for index, entry in enumerate(getattr(self, name)):
                first = seen.setdefault(entry.sequence, index)
                if first != index:
                    raise ValueError(
                        f"{name}[{index}].sequence {entry.sequence} repeats "
                        f"{name}[{first}].sequence"
                    )
        return self

    def stamp_range(self, fields: Iterable[str]) -> tuple[datetime, datetime] | None:
        """The earliest and the latest entry ``timestamp`` of ``fields`` (None when they have no
        entry), from the ranges validation found (what the worker's checks of a call's times
        and its partitions need, without going through a thousand entries again)."""
        ranges = self._stamp_ranges
        if ranges is None:  # built without validation (``model_construct``)
            ranges = {
                name: _field_range(e) for name in TIMELINE_FIELDS if (e := getattr(self, name))
            }
        found = [ranges[name] for name in fields if name in ranges]
        if not found:
            return None
        return min(low for low, _ in found), max(high for _, high in found)

    @property
    def entry_count(self) -> int:
        return (
            len(self.messages)
            + len(self.transitions)
            + len(self.metrics)
            + len(self.rag_retrievals)
            + sum(len(r.chunks) for r in self.rag_retrievals)
            + len(self.variable_extractions)
            + len(self.interruptions)
            + len(self.tool_executions)
            + len(self.events)
            + (1 if self.analysis else 0)
        )


class CallAnnouncementPayload(BaseModel):
    """The tiny message a runtime sends when a call starts (``calls.announce``).

    A call announced but never finalized is one whose runtime died mid-call: the consistency
    check lists it after a threshold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    call_id: UUID
    tenant_id: UUID
    agent_id: UUID
    started_at: AwareDatetime


def json_schema() -> dict[str, Any]:
    """The contract as JSON Schema, exported to ``docs/payload.schema.json``."""
    schema = CallPayload.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://callstore.dev/schemas/call-payload/v1.json"
    return schema


if __name__ == "__main__":  # ``python -m models.payload > docs/payload.schema.json``
    import json
    import sys

    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")
