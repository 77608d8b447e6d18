"""JSON encoding of call payloads on the hand-off path.

pydantic-core writes standard JSON (UTF-8, no ASCII escaping) about five times faster than the
standard library on a call payload, and encoding is most of the hand-off time of a large call:
the publisher's serializer and the spool/outbox files both use it. Everything reading these
bytes decodes them with an ordinary JSON decoder.
"""

from __future__ import annotations

from typing import Any

import pydantic_core


def encode_json(value: Any) -> bytes:
    """``value`` as compact JSON bytes."""
    return pydantic_core.to_json(value)
