"""Enum-like value sets shared by the payload contract and the table CHECK constraints.

They live apart from both so that the runtime side (which must not import the database layer)
and the tables agree on exactly one list of allowed values.
"""

from __future__ import annotations

from enum import StrEnum


class MetricType(StrEnum):
    """The twelve metric types the call runtime records (seed 001).

    Time metrics are recorded in seconds, as the runtime's pipeline reports them; token and
    character metrics are counts. Summaries in ``calls`` convert times to milliseconds.
    """

    STT_DELAY = "stt_delay"
    USER_TO_BOT_LATENCY = "user_to_bot_latency"
    TRANSCRIPT_LLM_GAP = "transcript_llm_gap"
    RAG_PROCESSING_TIME = "rag_processing_time"
    VARIABLE_EXTRACTION_TIME = "variable_extraction_time"
    LLM_TTFB = "llm_ttfb"
    LLM_PROCESSING_TIME = "llm_processing_time"
    LLM_TO_TTS_GAP = "llm_to_tts_gap"
    TOTAL_PIPELINE_TIME = "total_pipeline_time"
    LLM_PROMPT_TOKENS = "llm_prompt_tokens"
    LLM_COMPLETION_TOKENS = "llm_completion_tokens"
    TTS_CHARACTERS = "tts_characters"


class CallStatus(StrEnum):
    """Where a call stands. ``in_progress``: still running (a checkpoint of a live call);
    ``ended`` and ``error``: finalized by its runtime; ``interrupted``: its runtime process died
    mid-call and the call was recovered from the runtime's journal (what was recorded up to then).
    """

    IN_PROGRESS = "in_progress"
    ENDED = "ended"
    ERROR = "error"
    INTERRUPTED = "interrupted"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallSource(StrEnum):
    """Where a ``calls`` row came from: the live runtime or the Azure migration."""

    RUNTIME = "runtime"
    AZURE = "azure"


class CallType(StrEnum):
    REAL_CALL = "real_call"
    SIMULATOR = "simulator"
    TEST = "test"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class SearchMode(StrEnum):
    VECTOR = "vector"
    FTS = "fts"
    HYBRID = "hybrid"


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"
    MIXED = "mixed"


class DeadLetterStatus(StrEnum):
    """Life of a dead letter: waiting for an operator, replayed, or set aside on purpose."""

    PENDING = "pending"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class ArchiveStatus(StrEnum):
    """Life of an expired partition after retention took it out of its table.

    ``detaching``: recorded before the detach starts, so a run killed mid-way knows to finish it;
    ``archived``: in the ``archive`` schema, recoverable until the grace period ends;
    ``dropped``: gone (its export, if any, stays); ``missing``: not in the archive when it was due
    to be dropped (an operator restored or removed it by hand).
    """

    DETACHING = "detaching"
    ARCHIVED = "archived"
    DROPPED = "dropped"
    MISSING = "missing"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The allowed values of ``enum`` in declaration order, for CHECK constraints."""
    return tuple(member.value for member in enum)
