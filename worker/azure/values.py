"""Reading one legacy property: the untidy forms the contract allows, and nothing else.

Every function takes the raw property value (``None`` when the entity lacks it) and returns the
value the store wants, or raises ``Unmigratable`` with a reason an operator can act on. Azure
Tables hands out 64-bit integers wrapped in ``EntityProperty`` and GUIDs as ``UUID``; both are
unwrapped here so the callers see plain Python values.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from azure.data.tables import EntityProperty

from worker.phone_numbers import to_e164


class Unmigratable(ValueError):
    """The record cannot be migrated; the message is the reason kept in ``migration_rejects``."""


_CENT = Decimal("0.01")
#: ``Numeric(12, 2)``: ten digits before the point.
_MAX_MONEY = Decimal(10) ** 10
_INT32 = 2**31
_DIGITS = re.compile(r"\d+")


def plain(value: Any) -> Any:
    """``value`` without the SDK's wrappers (Int64 ``EntityProperty``, GUID ``UUID``)."""
    if isinstance(value, EntityProperty):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def no_nul(text: str, name: str) -> str:
    if "\x00" in text:
        raise Unmigratable(f"{name} contains a NUL character, which PostgreSQL text cannot hold")
    return text


def text(
    value: Any, name: str, *, max_length: int | None = None, required: bool = False
) -> str | None:
    """A string property; a missing one is None (or a reject when ``required``)."""
    value = plain(value)
    if value is None:
        if required:
            raise Unmigratable(f"{name} is missing")
        return None
    if not isinstance(value, str):
        raise Unmigratable(f"{name} is a {type(value).__name__}, not a string")
    no_nul(value, name)
    if max_length is not None and len(value) > max_length:
        raise Unmigratable(f"{name} is {len(value)} characters long (at most {max_length})")
    return value


def choice(value: Any, name: str, allowed: tuple[str, ...], *, default: str) -> str:
    """One of ``allowed``; missing (or empty) means ``default``."""
    found = text(value, name)
    if found is None or found == "":
        return default
    if found not in allowed:
        raise Unmigratable(f"{name} {found!r} is not one of {', '.join(allowed)}")
    return found


def when(value: Any, name: str, *, required: bool = False) -> datetime | None:
    """A DateTime property or an ISO-8601 string; without an offset the time is UTC."""
    value = plain(value)
    if value is None or value == "":
        if required:
            raise Unmigratable(f"{name} is missing")
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise Unmigratable(f"{name} {value[:60]!r} is not an ISO-8601 time") from None
    elif isinstance(value, datetime):
        if value.tzinfo is UTC:  # what the SDK hands out for DateTime properties
            return value
        parsed = value
    else:
        raise Unmigratable(f"{name} is a {type(value).__name__}, not a time")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is UTC:
        return parsed
    parsed = parsed.astimezone(UTC)
    return datetime(
        parsed.year,
        parsed.month,
        parsed.day,
        parsed.hour,
        parsed.minute,
        parsed.second,
        parsed.microsecond,
        tzinfo=UTC,
    )


def count(value: Any, name: str, *, default: int | None = None) -> int | None:
    """A non-negative whole number: an int32/int64, or a string of digits (older rows)."""
    value = plain(value)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise Unmigratable(f"{name} is a boolean, not a number")
    if isinstance(value, str):
        stripped = value.strip()
        try:
            number = Decimal(stripped)
        except InvalidOperation:
            raise Unmigratable(f"{name} {value[:40]!r} is not a number") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise Unmigratable(f"{name} {value[:40]!r} is not a whole number")
        value = int(number)
    elif isinstance(value, float):
        if not value.is_integer():
            raise Unmigratable(f"{name} {value!r} is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise Unmigratable(f"{name} is a {type(value).__name__}, not a number")
    if value < 0:
        raise Unmigratable(f"{name} {value} is negative")
    if value >= _INT32:
        raise Unmigratable(f"{name} {value} is too large")
    return value


def flag(value: Any, name: str) -> bool | None:
    """A boolean, or the ``"True"``/``"False"`` strings older rows hold; missing is None."""
    value = plain(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise Unmigratable(f"{name} {str(value)[:40]!r} is not a boolean")


def money(value: Any, name: str) -> Decimal | None:
    """A double, or a string such as ``"1234.50"`` (older rows), to the cent."""
    value = plain(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Unmigratable(f"{name} is a boolean, not an amount")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unmigratable(f"{name} {value!r} is not a finite amount")
        amount = Decimal(repr(value))
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise Unmigratable(f"{name} {value[:40]!r} is not an amount") from None
        if not amount.is_finite():
            raise Unmigratable(f"{name} {value[:40]!r} is not a finite amount")
    else:
        raise Unmigratable(f"{name} is a {type(value).__name__}, not an amount")
    rounded = amount.quantize(_CENT)
    if abs(rounded) >= _MAX_MONEY:
        raise Unmigratable(f"{name} {value!r} is too large")
    return rounded


def last_four(value: Any, name: str) -> str | None:
    """Four digits. Older rows stored the number, so ``0042`` reads back as ``42``."""
    value = plain(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Unmigratable(f"{name} is a boolean, not digits")
    if isinstance(value, int):
        if not 0 <= value <= 9999:
            raise Unmigratable(f"{name} {value} has more than four digits")
        return f"{value:04d}"
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and len(value.strip()) <= 4:
        return value.strip().zfill(4)
    raise Unmigratable(f"{name} {str(value)[:20]!r} is not four digits")


def e164(value: Any, name: str) -> str | None:
    """An E.164 number (``worker.phone_numbers``); older rows are formatted."""
    found = text(value, name)
    if found is None or found.strip() == "":
        return None
    normalized = to_e164(found)
    if normalized is None:
        raise Unmigratable(f"{name} {found[:40]!r} is not a phone number that maps to E.164")
    return normalized


def json_or_text(value: Any, name: str) -> tuple[Any, str | None]:
    """``(parsed, None)`` for JSON text; ``(None, text)`` for text that is not JSON (the old writer
    cut long values) or JSON that ``jsonb`` cannot hold (NaN, ``\\u0000``); ``(None, None)`` when
    missing or empty."""
    found = text(value, name)
    if found is None:
        return None, None
    if found.strip() == "":
        return None, None
    if "\\u0000" in found:
        return None, found
    try:
        return json.loads(found, parse_constant=_refuse_constant, parse_float=_finite), None
    except ValueError:
        return None, found


def json_object(value: Any, name: str) -> dict[str, Any]:
    """A JSON object serialized to text; missing or empty means ``{}``."""
    found = text(value, name)
    if found is None or found.strip() == "":
        return {}
    parsed, rest = json_or_text(found, name)
    if rest is not None or not isinstance(parsed, dict):
        raise Unmigratable(f"{name} is not a JSON object")
    return parsed


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid in jsonb")


def _finite(number: str) -> float:
    """A JSON number as a float; one too large for a double (``1e999``) is refused."""
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"{number} does not fit in a double")
    return value


def jsonable(value: Any, name: str) -> Any:
    """Any property value as JSON ``jsonb`` accepts (for ``metadata``)."""
    value = plain(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return no_nul(value, name)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def extras(properties: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The properties the contract does not name, kept as JSON."""
    return {name: jsonable(value, name) for name, value in properties.items() if name not in known}


def raw_entity(
    partition_key: str, row_key: str, timestamp: datetime, properties: Mapping[str, Any]
) -> str:
    """The entity as JSON text, for ``migration_rejects.raw`` (types kept readable)."""
    body: dict[str, Any] = {
        "PartitionKey": partition_key,
        "RowKey": row_key,
        "Timestamp": timestamp.isoformat(),
    }
    for name, value in properties.items():
        value = plain(value)
        if isinstance(value, datetime):
            body[name] = {"DateTime": value.isoformat()}
        elif isinstance(value, bytes):
            body[name] = {"Binary": base64.b64encode(value).decode("ascii")}
        elif isinstance(value, float) and not math.isfinite(value):
            body[name] = {"Double": repr(value)}
        else:
            body[name] = value
    return json.dumps(body, ensure_ascii=False, default=str)


def raw_blob(body: bytes) -> str:
    """Blob bytes as text for ``migration_rejects.raw``: undecodable bytes and NUL escaped."""
    return body.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
