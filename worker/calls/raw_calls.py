"""A ``calls.finalize`` message's payload as the bytes that arrived, from the worker's main
process to the pool process that runs the task.

Celery decodes every message body in the worker's main process (its strategy looks for a
protocol-1 ``args`` key) and pickles the decoded arguments to the pool beside the raw body,
which the pool then decodes again: for a 140 KiB call that is two full JSON decodes with kombu's
``object_hook`` and a pickle of some twenty thousand Python objects, most of a millisecond each,
all of it waste. The worker's guard (``worker.intake.gate``) therefore splits a finalize body
``[[payload], kwargs, embed]`` on its bytes: the small tail (``kwargs``, ``embed``) is decoded,
the payload is not, and the pool gets a ``RawCall`` (``tasks.calls.FinalizeRequest``) that it
decodes once, with pydantic-core.

Whatever the split cannot vouch for is decoded the old way: a body the split does not
recognise never becomes a ``RawCall`` (the guard decodes and checks it as before), and a
``RawCall`` whose payload bytes are not exactly one JSON object (two arguments, text the fast
decoder refuses, such as a lone UTF-16 surrogate the standard library accepts) is decoded whole
with the standard library, so the task sees what Celery would have handed it, or the refusal
the guard would have made.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pydantic_core

from worker.calls.messages import call_id_in, single_payload
from worker.errors import MessageUndecodable

_SPACE = b" \t\r\n"
#: Candidate ends of the argument list tried from the end of the body; Celery's own ``embed``
#: holds no bracket, so the first or second candidate is the one.
_SPLIT_TRIES = 4
_UTF8 = re.compile(r"utf-?8", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RawCall:
    """The body of a finalize message and where its one payload lies in it."""

    body: bytes = field(repr=False)
    start: int
    end: int

    @property
    def payload_bytes(self) -> bytes:
        return self.body[self.start : self.end]

    @property
    def call_id(self) -> uuid.UUID | None:
        """The call id as the bytes name it (for log context before anything is decoded)."""
        return call_id_in(self.payload_bytes)

    def decode(self) -> Any:
        """The payload, decoded once. ``MessageUndecodable`` or ``PayloadInvalid`` (the guard's
        refusals) when the body is not one call after all."""
        try:
            return pydantic_core.from_json(self.payload_bytes)
        except ValueError:
            return self._decode_whole()

    def _decode_whole(self) -> Any:
        try:
            decoded = json.loads(self.body.decode("utf-8"))
        except (ValueError, RecursionError) as error:
            raise MessageUndecodable(f"the body does not decode: {error}") from error
        if not isinstance(decoded, list) or len(decoded) != 3:
            raise MessageUndecodable("the body is not a Celery message of arguments")
        return single_payload(decoded[0], decoded[1])


@dataclass(frozen=True, slots=True)
class CallBody:
    """A finalize body split on its bytes: the payload undecoded, the rest decoded."""

    call: RawCall
    kwargs: dict[str, Any]
    embed: dict[str, Any] | None


def _skip_space(body: bytes, at: int) -> int:
    while at < len(body) and body[at] in _SPACE:
        at += 1
    return at


def _tail(text: bytes) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """``, kwargs, embed]`` decoded, or None when ``text`` is not exactly that."""
    text = text.lstrip(_SPACE)
    if not text.startswith(b","):
        return None
    try:
        found = json.loads(b"[" + text[1:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(found, list) or len(found) != 2:
        return None
    kwargs, embed = found
    if not isinstance(kwargs, dict) or not (embed is None or isinstance(embed, dict)):
        return None
    return kwargs, embed


def split_call_body(body: bytes, content_encoding: str | None = "utf-8") -> CallBody | None:
    """``body`` (``[[payload], kwargs, embed]``, as JSON) split without decoding the payload;
    None when it does not have that shape, and the caller decodes it the usual way.

    Only the tail is decoded; the payload's bytes are vouched for only as far as starting with
    ``{`` and ending with ``}``: ``RawCall.decode`` finds out the rest, in the pool.
    """
    if content_encoding is None or not _UTF8.fullmatch(content_encoding):
        return None
    start = _skip_space(body, 0)
    if body[start : start + 1] != b"[":
        return None
    start = _skip_space(body, start + 1)
    if body[start : start + 1] != b"[":
        return None
    start = _skip_space(body, start + 1)
    end = len(body)
    for _ in range(_SPLIT_TRIES):
        end = body.rfind(b"]", start, end)
        if end < 0:
            return None
        tail = _tail(body[end + 1 :])
        if tail is None:
            continue
        last = len(body[start:end].rstrip(_SPACE)) + start
        if body[start : start + 1] != b"{" or body[last - 1 : last] != b"}":
            return None
        return CallBody(RawCall(body, start, last), *tail)
    return None
