"""Checking a raw ``calls.finalize`` message against the payload contract.

Runs before any database work, so every refusal is a ``PayloadInvalid`` with a message that
names the field, and the raw bytes kept for the dead-letter table are the exact JSON received.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from pydantic import ValidationError

from models.payload import CallPayload
from worker.errors import PayloadInvalid, PayloadTooLarge

_MAX_ERRORS_SHOWN = 5


def encode(raw: Any) -> bytes:
    """``raw`` as compact JSON bytes; a value JSON cannot carry in UTF-8 is a ``PayloadInvalid``."""
    try:
        return pydantic_core.to_json(raw)
    except (pydantic_core.PydanticSerializationError, UnicodeError, ValueError) as error:
        raise PayloadInvalid(f"payload is not encodable as UTF-8 JSON: {error}") from error


def nul_paths(value: Any, path: str = "payload") -> list[str]:
    """Paths of the strings (or keys) in ``value`` that contain a NUL character."""
    found: list[str] = []
    if isinstance(value, str):
        if "\x00" in value:
            found.append(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                found.append(f"{path} (a key)")
            found.extend(nul_paths(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(nul_paths(item, f"{path}[{index}]"))
    return found


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


def validate_payload(raw: Any, *, max_bytes: int) -> tuple[CallPayload, bytes]:
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
        return CallPayload.model_validate(raw), body
    except ValidationError as error:
        raise PayloadInvalid(describe(error)) from error
