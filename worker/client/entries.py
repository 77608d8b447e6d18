"""A recording call's arguments checked against the payload contract where the call is made.

``CallRecorder`` builds every entry here. Each argument is checked against ``models.payload``
(type, length, range, allowed values) and refused with ``InvalidRecording`` naming it, or
normalized where refusing would lose real data:

* a NUL character or a lone UTF-16 surrogate in any text becomes U+FFFD and is counted on the
  call (``replaced_characters``): PostgreSQL cannot store either. Two halves of a surrogate pair
  that arrive one after the other (a streaming STT or LLM splitting an emoji) are joined first;
* keys of a RAG chunk the contract does not name (``page_number``, a retriever's own
  ``metadata``) are kept by name in the chunk's ``metadata``;
* JSON-valued arguments become plain JSON: dates, UUIDs and decimals become strings, as
  ``json.dumps(default=str)`` makes them; NaN and infinities become the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"`` (PostgreSQL's JSON has no such numbers); a value nested
  deeper than ``MAX_JSON_DEPTH`` is refused;
* a ``search_mode`` the contract does not know leaves the retrieval's mode empty (it stays in
  ``query_params``).

The promise, held by a hypothesis test (tests/integration/test_callsite_contract.py): a payload
built by ``CallRecorder`` from calls that did not raise is never refused by the worker. The
checks are plain Python on the hot path (no pydantic model per entry): a few microseconds a
record (docs/benchmarks.md, "Recording").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from models.enums import MetricType, SearchMode
from models.payload import (
    EMBEDDING_DIMENSIONS,
    MAX_COUNT_METRIC,
    MAX_JSON_DEPTH,
    MAX_TIME_METRIC_SECONDS,
    TIME_METRICS,
    RagChunk,
)
from worker.errors import InvalidRecording

REPLACEMENT = "\ufffd"
_BAD_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
#: ``numeric(10,2)`` holds up to 99,999,999.99 (a value is rounded to two places first).
MAX_MILLISECONDS = 99_999_999.99
#: An integer in a JSON value larger than this many bits is refused: PostgreSQL's JSON numbers
#: hold it, but Python cannot even print it as decimal digits by default.
MAX_JSON_INT_BITS = 1024
#: The names ``json.dumps`` gives non-finite floats, as strings PostgreSQL's JSON can hold.
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}
CHUNK_FIELDS = frozenset(RagChunk.model_fields) - {"metadata"}

E = TypeVar("E", bound=Enum)


def clean_text(text: str) -> tuple[str, int]:
    """``text`` as PostgreSQL can store it, and how many characters became U+FFFD."""
    if text.isascii():
        if "\x00" not in text:
            return text, 0
        return text.replace("\x00", REPLACEMENT), text.count("\x00")
    if _BAD_CHARACTERS.search(text) is None:
        return text, 0
    # A pair's halves that arrived apart and were concatenated make the character they encode.
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _BAD_CHARACTERS.subn(REPLACEMENT, joined)


def _fail(name: str, problem: str) -> InvalidRecording:
    return InvalidRecording(f"{name} {problem}")


def _type_name(value: Any) -> str:
    return type(value).__name__


class Entries:
    """Builds one call's entries from recording arguments; counts the characters it replaced.

    Every method raises ``InvalidRecording`` naming the argument, and returns values ready for
    the payload (never the caller's own mutable objects, which may change after the call).
    """

    __slots__ = ("replaced",)

    def __init__(self) -> None:
        self.replaced = 0

    # -- scalars -----------------------------------------------------------------------------

    def text(self, value: Any, name: str, limit: int | None = None) -> str:
        if type(value) is not str:
            if not isinstance(value, str):
                raise _fail(name, f"must be a string, got {_type_name(value)}")
            value = str(value)
        cleaned: str = value
        if not value.isascii() or "\x00" in value:
            cleaned, replaced = clean_text(value)
            self.replaced += replaced
        if limit is not None and len(cleaned) > limit:
            raise _fail(name, f"is {len(cleaned)} characters long; at most {limit} are stored")
        return cleaned

    def optional_text(self, value: Any, name: str, limit: int | None = None) -> str | None:
        return None if value is None else self.text(value, name, limit)

    @staticmethod
    def integer(value: Any, name: str, low: int = 0, high: int = INT32_MAX) -> int:
        if type(value) is not int:
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
                raise _fail(name, f"must be an integer, got {_type_name(value)}")
            if isinstance(value, float | Decimal) and (
                not math.isfinite(value) or value != int(value)
            ):
                raise _fail(name, f"must be a whole number, got {value!r}")
            value = int(value)
        number: int = value
        if not low <= number <= high:
            raise _fail(name, f"must be between {low} and {high}, got {number}")
        return number

    def optional_integer(
        self, value: Any, name: str, low: int = 0, high: int = INT32_MAX
    ) -> int | None:
        return None if value is None else self.integer(value, name, low, high)

    @staticmethod
    def number(value: Any, name: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise _fail(name, f"must be a number, got {_type_name(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise _fail(name, f"must be a finite number, got {value!r}")
        if not low <= number <= high:
            raise _fail(name, f"must be between {low:g} and {high:g}, got {value!r}")
        return number

    def milliseconds(self, value: Any, name: str) -> float | None:
        return None if value is None else self.number(value, name, 0.0, MAX_MILLISECONDS)

    @staticmethod
    def flag(value: Any) -> bool:
        return bool(value)

    @staticmethod
    def choice(value: Any, kind: type[E], name: str) -> E:
        """A member of ``kind`` from its value or a member of an equal enum (seed 001's own
        ``MetricType``, say)."""
        raw = getattr(value, "value", value)
        try:
            return kind(raw)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in kind)
            raise _fail(name, f"must be one of {allowed}, got {raw!r}") from None

    # -- JSON --------------------------------------------------------------------------------

    def json(self, value: Any, name: str) -> Any:
        """``value`` as plain JSON data (see the module docstring)."""
        return self._json(value, name, 0)

    def json_object(self, value: Any, name: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise _fail(name, f"must be a mapping, got {_type_name(value)}")
        return self._json_mapping(value, name, 1)

    def _json(self, value: Any, name: str, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            if value.isascii() and "\x00" not in value:
                return value
            cleaned, replaced = clean_text(value)
            self.replaced += replaced
            return cleaned
        if value is None or kind is bool:
            return value
        if kind is int:
            if value.bit_length() > MAX_JSON_INT_BITS:
                raise _fail(name, f"holds an integer of {value.bit_length()} bits")
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return _NON_FINITE.get(value, "NaN")
        if depth >= MAX_JSON_DEPTH:
            raise _fail(name, f"is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, Mapping):
            return self._json_mapping(value, name, depth + 1)
        if isinstance(value, list | tuple | set | frozenset):
            return [self._json(item, name, depth + 1) for item in value]
        if isinstance(value, str | int | float):  # subclasses: enums, numpy-like scalars
            return self._json(_plain_scalar(value), name, depth)
        return self._json(str(value), name, depth)

    def _json_mapping(self, value: Mapping[Any, Any], name: str, depth: int) -> dict[str, Any]:
        if depth > MAX_JSON_DEPTH:
            raise _fail(name, f"is nested deeper than {MAX_JSON_DEPTH} levels")
        return {self._key(key): self._json(item, name, depth) for key, item in value.items()}

    def _key(self, key: Any) -> str:
        if type(key) is str:
            if key.isascii() and "\x00" not in key:
                return key
        elif key is None or isinstance(key, bool):
            key = "null" if key is None else ("true" if key else "false")
        elif isinstance(key, int | float):
            key = repr(_plain_scalar(key))
        else:
            key = str(key)
        cleaned, replaced = clean_text(key)
        self.replaced += replaced
        return cleaned

    # -- lists of names ------------------------------------------------------------------------

    def names(self, value: Any, name: str) -> list[str]:
        """A list of strings (variable names, topics, keywords); items are made strings."""
        if value is None:
            return []
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
            raise _fail(name, f"must be a list of strings, got {_type_name(value)}")
        return [self.text(item if isinstance(item, str) else str(item), name) for item in value]

    # -- RAG chunks ----------------------------------------------------------------------------

    def chunk(self, value: Any, index: int) -> dict[str, Any]:
        """One chunk of a retrieval; unknown keys go to its ``metadata``."""
        name = f"chunks[{index}]"
        if not isinstance(value, Mapping):
            raise _fail(name, f"must be a mapping, got {_type_name(value)}")
        if "chunk_id" not in value or value["chunk_id"] is None:
            raise _fail(f"{name}.chunk_id", "is required")
        if "content" not in value or value["content"] is None:
            raise _fail(f"{name}.content", "is required")
        if "score" not in value or value["score"] is None:
            raise _fail(f"{name}.score", "is required")
        chunk_id = value["chunk_id"]
        if isinstance(chunk_id, str) and chunk_id.isdigit():
            chunk_id = int(chunk_id)
        stored: dict[str, Any] = {
            "chunk_rank": self.integer(value.get("chunk_rank", index + 1), f"{name}.chunk_rank", 1),
            "chunk_id": self.integer(chunk_id, f"{name}.chunk_id", 0, INT64_MAX),
            "content": self.text(value["content"], f"{name}.content"),
            "score": self.number(value["score"], f"{name}.score", 0.0, 1.0),
        }
        extra: dict[str, Any] = {}
        for key, item in value.items():
            if key in CHUNK_FIELDS:
                if item is not None and key not in stored:
                    stored[key] = self._chunk_field(key, item, name)
            else:
                cleaned = self._key(key)
                extra[cleaned] = self._json(item, f"{name}.{cleaned}", 1)
        if extra:
            stored["metadata"] = extra
        return stored

    def _chunk_field(self, key: str, value: Any, name: str) -> Any:
        label = f"{name}.{key}"
        if key == "document_id":
            return self.integer(value, label, 0, INT64_MAX)
        if key in ("chunk_index", "token_count"):
            return self.integer(value, label)
        if key == "filename":
            return self.text(value, label, 500)
        if key == "s3_key":
            return self.text(value, label, 1000)
        if key == "embedding_model":
            return self.text(value, label, 100)
        if key == "embedding":
            return self.embedding(value, label)
        raise AssertionError(f"chunk field {key} has no check")  # a new contract field

    def embedding(self, value: Any, name: str) -> list[float]:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise _fail(name, f"must be a list of {EMBEDDING_DIMENSIONS} numbers")
        if len(value) != EMBEDDING_DIMENSIONS:
            raise _fail(name, f"has {len(value)} dimensions, not {EMBEDDING_DIMENSIONS}")
        try:
            vector = [float(v) for v in value]
        except (TypeError, ValueError):
            raise _fail(name, "must hold numbers only") from None
        if not all(math.isfinite(v) for v in vector):
            raise _fail(name, "must hold finite numbers only")
        return vector

    # -- metrics -------------------------------------------------------------------------------

    def metric_value(self, metric_type: MetricType, value: Any) -> float:
        if metric_type in TIME_METRICS:
            return self.number(value, "value", -MAX_TIME_METRIC_SECONDS, MAX_TIME_METRIC_SECONDS)
        return self.number(value, "value", 0.0, MAX_COUNT_METRIC)

    def search_mode(self, value: Any) -> str | None:
        """The retrieval's mode when the contract knows it, else none (it stays in the params)."""
        raw = getattr(value, "value", value)
        try:
            return SearchMode(raw).value if raw else None
        except ValueError:
            return None


def _plain_scalar(value: Any) -> Any:
    """A subclass of str, int or float (an enum member, say) as the plain value."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    return float(value)
