"""Hypothesis strategies for payload tests: arbitrary JSON, payloads broken on purpose,
conversations in any script, and sequences of recording calls a runtime might make."""

from __future__ import annotations

import copy
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from models.enums import CallStatus, MessageRole, values
from models.payload import MAX_CALL_SPAN, MAX_CLOCK_SKEW
from tests import factories
from worker.errors import InvalidRecording

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

REQUIRED = ("call_id", "tenant_id", "agent_id", "status", "started_at", "finalized_at")
not_uuid = st.text(max_size=20).filter(lambda s: len(s.replace("-", "")) != 32)
not_status = st.text(max_size=12).filter(lambda s: s not in values(CallStatus))


def _set(path: list[Any], value: Any) -> Any:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        target: Any = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body

    return mutate


def _delete(key: str) -> Any:
    def mutate(body: dict[str, Any]) -> dict[str, Any]:
        del body[key]
        return body

    return mutate


@st.composite
def malformed_payloads(draw: st.DrawFn) -> dict[str, Any] | Any:
    """A payload that the contract must refuse, each with a different reason."""
    seed = draw(st.integers(min_value=1, max_value=10_000))
    body = copy.deepcopy(factories.small_payload(seed))
    mutation = draw(
        st.sampled_from(
            [
                "missing",
                "call_id",
                "status",
                "nul",
                "count_metric",
                "extra_key",
                "version",
                "naive_time",
                "far_time",
                "score",
                "messages_type",
                "not_an_object",
                "role",
                "long_node",
            ]
        )
    )
    if mutation == "missing":
        return _delete(draw(st.sampled_from(REQUIRED)))(body)
    if mutation == "call_id":
        return _set(["call_id"], draw(not_uuid))(body)
    if mutation == "status":
        return _set(["status"], draw(not_status))(body)
    if mutation == "nul":
        text = draw(st.text(max_size=10))
        return _set(["messages", 0, "content"], text + "\x00" + text)(body)
    if mutation == "count_metric":
        index = next(
            i for i, m in enumerate(body["metrics"]) if m["metric_type"] == "llm_prompt_tokens"
        )
        value = draw(st.sampled_from([-1, 10**12, 2.5e15]))
        return _set(["metrics", index, "value"], value)(body)
    if mutation == "extra_key":
        key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in body))
        return _set([key], draw(json_values))(body)
    if mutation == "version":
        return _set(["schema_version"], draw(st.integers().filter(lambda v: v != 1)))(body)
    if mutation == "naive_time":
        return _set(["started_at"], "2026-11-20T14:30:00")(body)
    if mutation == "far_time":
        return _set(["messages", 0, "timestamp"], "1999-01-01T00:00:00+00:00")(body)
    if mutation == "score":
        if not body["rag_retrievals"]:
            return _set(["started_at"], "yesterday")(body)
        return _set(["rag_retrievals", 0, "chunks", 0, "score"], draw(st.floats(1.01, 1e6)))(body)
    if mutation == "messages_type":
        return _set(["messages"], draw(st.text(max_size=5) | st.integers()))(body)
    if mutation == "role":
        return _set(["messages", 0, "role"], "robot")(body)
    if mutation == "long_node":
        return _set(["messages", 0, "node_id"], "n" * 256)(body)
    return draw(json_values.filter(lambda v: not isinstance(v, dict)))


#: Text PostgreSQL stores (UTF-8 without NUL), and pieces that tend to break text handling:
#: emoji with modifiers and joiners, right-to-left scripts and marks, combining characters.
stored_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
tricky_text = st.sampled_from(
    [
        "🙂",
        "👩🏽‍💻",
        "🇨🇦",
        "مرحبا بالعالم",
        "שלום עולם",
        "\u202bRTL\u202c",
        "e\u0301",
        "\n",
        ": ",
        "\\",
    ]
)
message_content = st.lists(stored_text | tricky_text, max_size=4).map("".join)


@st.composite
def message_entries(draw: st.DrawFn, *, start: Any = factories.DEFAULT_START) -> dict[str, Any]:
    """One ``messages`` entry of a payload that started at ``start``: any role, content, node
    and turn; stamped anywhere the contract allows, with microseconds or without, at any UTC
    offset (the instant is what is stored, not the offset)."""
    seconds = draw(
        st.integers(-int(MAX_CLOCK_SKEW.total_seconds()), int(MAX_CALL_SPAN.total_seconds()) - 1)
    )
    micros = draw(st.just(0) | st.integers(0, 999_999))
    offset = timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    stamp = (start + timedelta(seconds=seconds, microseconds=micros)).astimezone(offset)
    return {
        "sequence": draw(st.integers(1, 40)),  # a call's list must keep them unique
        "timestamp": stamp.isoformat(),
        "role": draw(st.sampled_from([r.value for r in MessageRole])),
        "content": draw(message_content),
        "node_id": draw(st.none() | stored_text),
        "turn_number": draw(st.none() | st.integers(0, 2**31 - 1)),
        "was_interrupted": draw(st.booleans()),
    }


# -- recording calls as a runtime makes them, good and bad ----------------------------------------

#: Any code point: NUL, lone surrogates (half of a split emoji), everything PostgreSQL refuses;
#: and the two halves of an emoji one after the other.
wild_text = st.lists(
    st.characters(exclude_categories=()) | st.sampled_from(["\x00", "\ud83d", "\ude00"]),
    max_size=12,
).map("".join)
wild_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(0, 9).flatmap(lambda n: st.just(10**400) if n == 0 else st.just(2**70))
    | st.floats()
    | wild_text
)
wild_json = st.recursive(
    wild_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children, children)
        | st.dictionaries(wild_text | st.integers() | st.none(), children, max_size=3)
    ),
    max_leaves=10,
)


def _nested(levels: int) -> Any:
    value: Any = "deep"
    for _ in range(levels):
        value = {"k": value} if levels % 2 else [value]
    return value


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` nine times in ten: a call sequence fails on a bad argument now and then, and
    most of what it records is accepted."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 0 else good)


json_argument = mostly(wild_json, st.integers(60, 70).map(_nested))
maybe_text = mostly(st.none() | wild_text, st.sampled_from(["n" * 256, "c" * 501, 7]))
turn = mostly(st.none() | st.integers(0, 500), st.integers(-2, 2**31 + 1) | st.just(2.5))
number = mostly(
    st.floats(0, 100) | st.integers(0, 1000),
    st.floats() | st.integers(-10, 2 * 10**9) | st.sampled_from([1e8, 86_401.0, "1"]),
)


@st.composite
def chunks(draw: st.DrawFn) -> dict[Any, Any]:
    chunk: dict[Any, Any] = {
        "chunk_id": draw(
            mostly(st.integers(0, 10**6) | st.just("12"), st.integers(-1, 2**64) | st.just("a"))
        ),
        "content": draw(wild_text),
        "score": draw(mostly(st.floats(0, 1) | st.just(1), st.floats(-0.5, 1.5))),
    }
    if draw(st.integers(0, 9)) == 0:
        del chunk[draw(st.sampled_from(["chunk_id", "content", "score"]))]
    chunk.update(draw(st.dictionaries(wild_text, wild_json, max_size=3)))  # extra keys
    optional = {
        "document_id": mostly(st.integers(0, 10**9), st.integers(-1, 2**64)),
        "filename": maybe_text,
        "chunk_index": turn,
        "token_count": turn,
        "embedding_model": maybe_text,
        "embedding": mostly(st.none() | st.just([0.5] * 1536), st.just([0.5] * 3)),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            chunk[key] = draw(strategy)
    return chunk


#: (method name or "setattr", positional arguments, keyword arguments)
RecordingCall = tuple[str, tuple[Any, ...], dict[str, Any]]


def _call(name: str, *args: Any, **kwargs: Any) -> RecordingCall:
    return (name, args, kwargs)


recording_call = st.one_of(
    st.builds(
        _call, st.just("record_message"),
        st.sampled_from(["user", "assistant", "system", "robot"]), wild_text,
        node_id=maybe_text, turn_number=turn, was_interrupted=st.booleans(),
    ),
    st.builds(
        _call, st.just("record_transition"),
        from_node_id=maybe_text, to_node_id=maybe_text, reason=maybe_text, condition=maybe_text,
        turn_number=turn, from_node_name=maybe_text, to_node_name=maybe_text,
    ),
    st.builds(
        _call, st.just("record_metric"),
        st.sampled_from(["llm_ttfb", "stt_delay", "llm_prompt_tokens", "tts_characters", "bogus"]),
        number, processor=maybe_text, turn_number=turn, node_id=maybe_text,
    ),
    st.builds(
        _call, st.just("record_rag_retrieval"), wild_text,
        st.none() | st.dictionaries(wild_text, wild_json, max_size=3)
        | st.fixed_dictionaries({"search_mode": st.sampled_from(["hybrid", "semantic", ""]),
                                 "top_k": turn}),
        st.none() | st.lists(chunks(), min_size=1, max_size=3),
        processing_time_ms=st.none() | number, node_id=maybe_text, turn_number=turn,
    ),
    st.builds(
        _call, st.just("record_variable_extraction"),
        st.lists(wild_text | st.integers(), max_size=3) | wild_text,
        st.dictionaries(wild_text, wild_json, max_size=3), st.booleans(),
        processing_time_ms=st.none() | number, node_id=maybe_text, turn_number=turn,
    ),
    st.builds(
        _call, st.just("record_user_interruption"), interrupted_at_turn=turn, node_id=maybe_text
    ),
    st.builds(
        _call, st.just("record_tool_execution"), maybe_text,
        request=json_argument, response=json_argument, success=st.none() | st.booleans(),
        duration_ms=turn, node_id=maybe_text, turn_number=turn,
    ),
    st.builds(_call, st.just("record_event"), maybe_text, json_argument),
    st.builds(
        _call, st.just("set_analysis"),
        sentiment=st.none() | st.sampled_from(["positive", "mixed", "ecstatic"]),
        sentiment_score=st.none() | number, call_successful=st.none() | st.booleans(),
        summary=maybe_text, topics=st.none() | st.lists(wild_text, max_size=3),
        keywords_detected=st.none() | st.lists(wild_text, max_size=3), model=maybe_text,
        analysis_data=st.none() | st.dictionaries(wild_text, wild_json, max_size=3),
    ),
    st.builds(_call, st.just("update_recording_info"), maybe_text, maybe_text),
    st.builds(
        _call, st.just("update_status"),
        st.sampled_from(["in_progress", "ended", "error", "interrupted", "done"]), maybe_text,
    ),
    st.builds(
        _call, st.just("setattr"),
        st.sampled_from(["initial_node", "final_node", "agent_name", "recording_url"]),
        maybe_text | st.integers(),
    ),
)  # fmt: skip
recording_calls = st.lists(recording_call, max_size=12)


def replay(recorder: Any, calls: list[RecordingCall]) -> int:
    """Make ``calls`` on ``recorder`` as a runtime would; how many it refused (``InvalidRecording``,
    the only error a recording call may raise for its input)."""
    refused = 0
    for name, args, kwargs in calls:
        try:
            if name == "setattr":
                setattr(recorder, *args)
            else:
                getattr(recorder, name)(*args, **kwargs)
        except InvalidRecording:
            refused += 1
    return refused
