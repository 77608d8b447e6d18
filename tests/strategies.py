"""Hypothesis strategies for payload tests: arbitrary JSON, payloads broken on purpose, and
conversations in any script."""

from __future__ import annotations

import copy
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from models.enums import CallStatus, MessageRole, values
from models.payload import MAX_CALL_SPAN, MAX_CLOCK_SKEW
from tests import factories

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
        "sequence": draw(st.integers(1, 40)),  # repeats on purpose: ties keep their order
        "timestamp": stamp.isoformat(),
        "role": draw(st.sampled_from([r.value for r in MessageRole])),
        "content": draw(message_content),
        "node_id": draw(st.none() | stored_text),
        "turn_number": draw(st.none() | st.integers(0, 2**31 - 1)),
        "was_interrupted": draw(st.booleans()),
    }
