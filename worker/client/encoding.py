"""JSON encoding of call payloads on the hand-off path.

pydantic-core writes standard JSON (UTF-8, no ASCII escaping) about five times faster than the
standard library on a call payload, and encoding is most of the hand-off time of a large call:
the publisher's serializer, the spool/outbox files and the call journals all use it. Everything
reading these bytes decodes them with an ordinary JSON decoder.

The recorder hands over only values its call-site checks made plain (``worker.client.entries``),
so the encoder should never fail; if it does anyway (a lone surrogate, nesting beyond its limit,
an object it has no type for), the value is encoded again with each such part made safe — bad
characters as U+FFFD, unknown objects as their text, what is nested too deep as a note — and
that is logged at ERROR: a call is never refused its hand-off because of its content.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import pydantic_core

logger = logging.getLogger("callstore.encoding")

#: Deeper than this, the safe encoding keeps a note instead of the value.
SAFE_DEPTH = 128
_UNENCODABLE = re.compile("[\x00\ud800-\udfff]")
#: The names ``json.dumps`` gives non-finite floats.
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def encode_json(value: Any) -> bytes:
    """``value`` as compact JSON bytes."""
    try:
        return pydantic_core.to_json(value)
    except (pydantic_core.PydanticSerializationError, ValueError, RecursionError) as error:
        logger.error(
            "value not encodable as JSON; encoded again with its unencodable parts replaced",
            extra={"encode_error": str(error)[:300]},
        )
        return pydantic_core.to_json(safe_json(value))


def safe_json(value: Any, depth: int = 0) -> Any:
    """``value`` with everything JSON cannot carry replaced (see the module docstring)."""
    if isinstance(value, str):
        return _UNENCODABLE.sub("\ufffd", value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE.get(value, "NaN")
    if depth >= SAFE_DEPTH:
        return f"<nested deeper than {SAFE_DEPTH} levels>"
    if isinstance(value, dict):
        return {str(safe_json(str(k))): safe_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [safe_json(item, depth + 1) for item in value]
    return safe_json(str(value), depth)
