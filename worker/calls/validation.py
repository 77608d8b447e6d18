"""Checking a raw ``calls.finalize`` message against the payload contract.

Runs before any database work, so every refusal is a ``PayloadInvalid`` with a message that
names the field, and the raw bytes kept for the dead-letter table are the exact JSON received.
Nothing here recurses over the payload in Python: the walks that name a field keep their own
stack, and pydantic's encoder and validator stop at their own depth limits (the worker's main
process has already refused anything nested deeper than the contract allows,
``worker.calls.messages``).

The worker also holds a payload against its own clock (``ClockWindow``): a call stamped before
what retention keeps, or further ahead than ``CALLSTORE_MAX_CLOCK_SKEW``, is refused with the
field named, so no partition is ever made for a month a broken runtime clock invented.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pydantic_core
from pydantic import ValidationError

from models.payload import MAX_JSON_DEPTH, TIMELINE_FIELDS, CallPayload
from worker.errors import PayloadInvalid, PayloadTooLarge

_MAX_ERRORS_SHOWN = 5
#: With retention off (``CALLSTORE_RETENTION_DAYS=0``), how far into the past a call may be.
UNBOUNDED_RETENTION_DAYS = 36_500


def encode(raw: Any) -> bytes:
    """``raw`` as compact JSON bytes; a value JSON cannot carry in UTF-8 is a ``PayloadInvalid``
    naming where it is."""
    try:
        return pydantic_core.to_json(raw)
    except (pydantic_core.PydanticSerializationError, UnicodeError, ValueError) as error:
        raise PayloadInvalid(
            f"payload is not encodable as UTF-8 JSON: {_why_not_encodable(raw) or error}"
        ) from error


def walk(value: Any, path: str = "payload") -> Iterator[tuple[str, Any, int]]:
    """Every ``(path, value, depth)`` in ``value``, depth first, without recursion; a container
    deeper than ``MAX_JSON_DEPTH`` levels below the payload's fields is not entered."""
    pending: list[tuple[str, Any, int]] = [(path, value, 0)]
    while pending:
        where, item, depth = pending.pop()
        yield where, item, depth
        if depth > MAX_JSON_DEPTH + 4:
            continue
        if isinstance(item, dict):
            pending.extend((f"{where}.{key}", child, depth + 1) for key, child in item.items())
        elif isinstance(item, list):
            pending.extend((f"{where}[{i}]", child, depth + 1) for i, child in enumerate(item))


def _why_not_encodable(raw: Any) -> str:
    """Where a payload holds what UTF-8 JSON cannot: a lone surrogate (half an emoji), too deep
    a nesting."""
    found: list[str] = []
    for path, item, depth in walk(raw):
        if depth > MAX_JSON_DEPTH + 4:
            return f"{path}: nested more than {MAX_JSON_DEPTH} levels deep"
        texts = [item] if isinstance(item, str) else []
        if isinstance(item, dict):
            texts = [key for key in item if isinstance(key, str)]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                found.append(f"{path}: holds a lone UTF-16 surrogate (half of a character)")
    return "; ".join(sorted(found)[:5])


def nul_paths(value: Any, path: str = "payload") -> list[str]:
    """Paths of the strings (or keys) in ``value`` that contain a NUL character."""
    found: list[str] = []
    for where, item, _ in walk(value, path):
        if isinstance(item, str) and "\x00" in item:
            found.append(where)
        elif isinstance(item, dict):
            found.extend(
                f"{where} (a key)" for key in item if isinstance(key, str) and "\x00" in key
            )
    return sorted(found)


def describe(error: ValidationError) -> str:
    """A short, readable summary of a pydantic error: field path and reason, a few at most."""
    items = error.errors(include_url=False, include_input=False)
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or 'payload'}: {item['msg']}"
        for item in items[:_MAX_ERRORS_SHOWN]
    ]
    more = len(items) - _MAX_ERRORS_SHOWN
    if more > 0:
        parts.append(f"... and {more} more")
    return f"{len(items)} validation error(s): " + "; ".join(parts)


@dataclass(frozen=True, slots=True)
class ClockWindow:
    """The instants a payload's times may fall in, seen from the receiving worker's clock."""

    earliest: datetime
    latest: datetime
    retention_days: int
    skew_seconds: int

    @classmethod
    def around(cls, now: datetime, *, retention_days: int, skew_seconds: int) -> ClockWindow:
        """From what retention keeps (everything for a century when it is off) to
        ``skew_seconds`` ahead of ``now``."""
        days = retention_days if retention_days > 0 else UNBOUNDED_RETENTION_DAYS
        return cls(
            now - timedelta(days=days), now + timedelta(seconds=skew_seconds), days, skew_seconds
        )

    def check(self, payload: CallPayload) -> None:
        """``PayloadInvalid`` naming the first time outside the window."""
        ends = [payload.started_at, payload.finalized_at]
        if payload.ended_at is not None:
            ends.append(payload.ended_at)
        entries = payload.stamp_range(TIMELINE_FIELDS)
        if entries is not None:
            ends.extend(entries)
        if self.earliest <= min(ends) and max(ends) <= self.latest:
            return
        stamps: list[tuple[str, datetime | None]] = [
            ("started_at", payload.started_at),
            ("ended_at", payload.ended_at),
            ("finalized_at", payload.finalized_at),
        ]
        for name in TIMELINE_FIELDS:
            stamps.extend(
                (f"{name}[{i}].timestamp", e.timestamp)
                for i, e in enumerate(getattr(payload, name))
            )
        for field, stamp in stamps:
            if stamp is None:
                continue
            if stamp < self.earliest:
                raise PayloadInvalid(
                    f"{field} {stamp.isoformat()} is before {self.earliest.isoformat()}: older "
                    f"than the {self.retention_days} days retention keeps"
                    " (CALLSTORE_RETENTION_DAYS); is the runtime's clock wrong?"
                )
            if stamp > self.latest:
                raise PayloadInvalid(
                    f"{field} {stamp.isoformat()} is after {self.latest.isoformat()}: more than"
                    f" {self.skew_seconds} s ahead of this worker's clock"
                    " (CALLSTORE_MAX_CLOCK_SKEW); is the runtime's clock wrong?"
                )


def validate_payload(
    raw: Any, *, max_bytes: int, window: ClockWindow | None = None
) -> tuple[CallPayload, bytes]:
    """The validated payload and its JSON bytes, or ``PayloadInvalid`` saying what is wrong."""
    if not isinstance(raw, dict):
        raise PayloadInvalid(f"payload must be a JSON object, got {type(raw).__name__}")
    body = encode(raw)
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"payload is {len(body)} bytes, over CALLSTORE_MAX_PAYLOAD_BYTES={max_bytes}"
        )
    if b"\\u0000" in body:  # cheap pre-check on the encoded form; the walk names the fields
        paths = nul_paths(raw)
        if paths:
            raise PayloadInvalid(
                "PostgreSQL cannot store the NUL character found in " + ", ".join(paths[:5])
            )
    try:
        payload = CallPayload.model_validate(raw)
    except ValidationError as error:
        raise PayloadInvalid(describe(error)) from error
    except (ArithmeticError, ValueError, TypeError) as error:  # never outside validation
        raise PayloadInvalid(f"payload: {type(error).__name__}: {error}") from error
    if window is not None:
        window.check(payload)
    return payload, body
