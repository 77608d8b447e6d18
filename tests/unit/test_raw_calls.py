"""A finalize body split on its bytes: the payload reaches the pool undecoded and decodes to
what Celery's own decoding would have handed the task, or to the guard's refusal."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import factories
from tests.strategies import json_values, malformed_payloads
from worker.calls.raw_calls import RawCall, split_call_body
from worker.client.encoding import encode_json
from worker.dev.raw_messages import task_body
from worker.errors import MessageUndecodable, PayloadInvalid

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def _ours(args: list[Any], kwargs: dict[str, Any] | None = None) -> bytes:
    """A body as the runtime's publisher writes it: compact JSON by pydantic-core."""
    return encode_json([args, kwargs or {}, EMBED])


def _decoded(body: bytes) -> Any:
    split = split_call_body(body)
    assert split is not None
    return split.call.decode()


@pytest.mark.parametrize("encode", [_ours, task_body], ids=["pydantic-core", "standard library"])
def test_the_payload_is_split_off_undecoded_and_decodes_to_what_was_sent(encode: Any) -> None:
    payload = factories.payload(3)
    body = encode([payload])
    split = split_call_body(body)
    assert split is not None
    assert split.kwargs == {} and split.embed == EMBED
    assert json.loads(split.call.payload_bytes) == payload
    assert split.call.decode() == payload
    assert str(split.call.call_id) == payload["call_id"]


@given(json_values)
def test_any_json_payload_decodes_as_the_standard_library_decodes_it(value: Any) -> None:
    body = task_body([{"call_id": "x", "value": value}])
    assert _decoded(body) == json.loads(body)[0][0]


@given(malformed_payloads())
def test_a_malformed_payload_still_decodes_exactly_for_validation_to_refuse(raw: Any) -> None:
    body = task_body([raw])
    split = split_call_body(body)
    if split is not None:  # only an object is left undecoded
        assert split.call.decode() == json.loads(body)[0][0]


def test_an_embed_with_brackets_and_keyword_arguments_are_read_from_the_tail() -> None:
    embed = {"callbacks": [{"task": "x", "args": [1]}], "chain": None}
    body = json.dumps([[{"call_id": "a"}], {"priority": "high"}, embed]).encode()
    split = split_call_body(body)
    assert split is not None
    assert split.kwargs == {"priority": "high"} and split.embed == embed
    many = {"callbacks": [[[[[1]]]]]}
    assert split_call_body(json.dumps([[{"call_id": "a"}], {}, many]).encode()) is None


@pytest.mark.parametrize(
    "body",
    [
        task_body([]),
        task_body(["not an object"]),
        b"{}",
        b"not json at all",
        task_body([factories.payload(4)])[:-40],
    ],
    ids=["no argument", "a string argument", "an object body", "not JSON", "cut short"],
)
def test_what_is_not_one_object_in_a_call_body_is_left_to_the_usual_decoding(body: bytes) -> None:
    assert split_call_body(body) is None


def test_only_utf8_bodies_are_split() -> None:
    assert split_call_body(task_body([{"a": 1}]), "binary") is None
    assert split_call_body(task_body([{"a": 1}]), "UTF-8") is not None


def test_two_payloads_are_the_shape_refusal_the_guard_would_make() -> None:
    one = factories.small_payload(1)
    with pytest.raises(PayloadInvalid, match="exactly one argument"):
        _decoded(task_body([one, one]))


def test_bytes_that_do_not_decode_are_undecodable() -> None:
    body = b'[[{"call_id": "a", "x": [1, 2}], {}, {}]'
    with pytest.raises(MessageUndecodable):
        _decoded(body)


def test_a_lone_surrogate_decodes_as_the_standard_library_reads_it() -> None:
    """pydantic-core refuses ``\\ud83d`` alone; validation must see it to name the field."""
    body = task_body([{"call_id": "a", "content": "half an emoji \ud83d"}])
    assert _decoded(body) == {"call_id": "a", "content": "half an emoji \ud83d"}


@given(st.binary(max_size=64))
def test_no_bytes_break_the_split(junk: bytes) -> None:
    split = split_call_body(b"[[{" + junk + b"}]," + junk + b"]")
    if split is not None:  # decodes, or is refused as the guard refuses: nothing else
        with contextlib.suppress(MessageUndecodable, PayloadInvalid):
            split.call.decode()


def test_the_bytes_never_reach_a_repr() -> None:
    raw = RawCall(b'{"content": "secret"}', 0, 21)
    assert "secret" not in repr(raw)
