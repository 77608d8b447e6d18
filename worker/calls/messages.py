"""What a ``calls.finalize`` message must be before anything recurses over it, and what the
worker keeps of one it refuses.

A message is bytes until something decodes it; every decoder, encoder and pickler after that
recurses over it (the worker's main process pickles a task for its pool). So the nesting depth
is measured on the bytes, without recursion and in C-speed passes, before anything else runs:
the contract bounds each JSON-valued field at ``models.payload.MAX_JSON_DEPTH`` levels, and a
message may be at most ``MESSAGE_DEPTH_LIMIT`` deep (the field's bound plus the levels of the
message around it). A message of any other argument shape than one payload is refused too.

A refused message becomes a ``Refusal``: the bytes that arrived, the reason, and what could be
read of it. The worker's main process hands it to the ``calls.dead_letter`` task (as JSON, the
bytes in base64), which keeps it in ``failed_payloads``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from models.payload import MAX_JSON_DEPTH
from worker.errors import PayloadInvalid

#: The task that keeps a refused message (``tasks/calls.py``).
DEAD_LETTER_TASK = "calls.dead_letter"

#: Levels of a Celery message around a payload's JSON-valued field: the body ``[args, kwargs,
#: embed]``, the arguments, the payload, a list of entries, an entry, a mapping in it.
ENVELOPE_DEPTH = 6
MESSAGE_DEPTH_LIMIT = MAX_JSON_DEPTH + ENVELOPE_DEPTH
#: Levels of a payload around a JSON-valued field: the payload, a list, an entry, a mapping.
PAYLOAD_DEPTH_LIMIT = MAX_JSON_DEPTH + 4

_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_INNERMOST = re.compile(rb"\[\]|\{\}")
_CALL_ID = re.compile(
    rb'"call_id"\s*:\s*"([0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
    rb'[0-9a-fA-F]{12})"'
)


def json_deeper_than(body: bytes, limit: int) -> bool:
    """Whether ``body`` (JSON text) nests more than ``limit`` levels deep.

    Strings are cut out first (a bracket inside a string is text, ``_structure``).
    Each pass after that removes the innermost empty pairs: the number of passes is the depth.
    Every step is a C-level scan and at most ``limit + 1`` passes run, so even a hostile body
    costs a bounded, small time (about 1 ms for a 200 KB call). Unbalanced text is not judged
    here: the decoder refuses it.
    """
    structure = _structure(body)
    for _ in range(limit):
        if not structure:
            return False
        thinner = _INNERMOST.sub(b"", structure)
        if thinner == structure:
            return False
        structure = thinner
    return bool(_INNERMOST.search(structure))


def _structure(body: bytes) -> bytes:
    """The brackets of ``body`` outside its strings, in order.

    Escapes go first (only when there is a backslash at all: the search is a ``memchr``), then
    everything but quotes and brackets. A string without brackets is then two adjacent quotes,
    and so is the end of one string and the start of the next with nothing structural between
    them: removing adjacent pairs of quotes never joins text outside strings, and leaves few
    quotes for the split that cuts out the strings holding brackets.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = body.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    return b"".join(kept.split(b'"')[::2])


def call_id_in(body: bytes) -> uuid.UUID | None:
    """The first ``"call_id"`` in ``body``, read from the bytes (what an operator searches by),
    without decoding a message that may not decode."""
    found = _CALL_ID.search(body[: 1024 * 1024])
    if found is None:
        return None
    try:
        return uuid.UUID(found.group(1).decode())
    except ValueError:
        return None


def single_payload(args: Any, kwargs: Any) -> Any:
    """The one payload of a ``calls.finalize`` message; ``PayloadInvalid`` naming the shape
    found otherwise (Celery would raise ``TypeError`` before the task ran)."""
    if not isinstance(args, list | tuple) or not isinstance(kwargs, dict):
        raise PayloadInvalid(
            "a calls.finalize message carries its arguments as a list and a mapping, got "
            f"{type(args).__name__} and {type(kwargs).__name__}"
        )
    if len(args) != 1 or kwargs:
        named = f" and keyword argument(s) {sorted(map(str, kwargs))}" if kwargs else ""
        raise PayloadInvalid(
            "calls.finalize takes exactly one argument, the payload; the message has "
            f"{len(args)} positional argument(s){named}"
        )
    return args[0]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message refused before any task ran it, with the bytes that arrived."""

    error_class: str
    reason: str
    body: bytes
    task_name: str = ""
    task_id: str | None = None
    content_type: str | None = None

    @property
    def call_id(self) -> uuid.UUID | None:
        return call_id_in(self.body)

    def to_json(self) -> dict[str, Any]:
        return {
            "error_class": self.error_class,
            "reason": self.reason,
            "body": base64.b64encode(self.body).decode("ascii"),
            "task_name": self.task_name,
            "task_id": self.task_id,
            "content_type": self.content_type,
        }

    @classmethod
    def from_json(cls, value: Any) -> Refusal:
        """The refusal ``to_json`` wrote; anything else (a forged ``calls.dead_letter``
        message) is itself kept, as the JSON it was."""
        try:
            return cls(
                error_class=str(value["error_class"])[:100],
                reason=str(value["reason"]),
                body=base64.b64decode(value["body"], validate=True),
                task_name=str(value.get("task_name") or ""),
                task_id=_text_or_none(value.get("task_id")),
                content_type=_text_or_none(value.get("content_type")),
            )
        except (TypeError, KeyError, AttributeError, ValueError, binascii.Error):
            return cls(
                error_class="PayloadInvalid",
                reason=f"{DEAD_LETTER_TASK} received something that is not a refusal",
                body=json.dumps(value, default=repr).encode(),
                task_name=DEAD_LETTER_TASK,
            )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)[:255]
