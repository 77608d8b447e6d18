"""Reading a field of a call leniently: keep what can be kept, and say what was odd.

A ``CallHistory`` entity is rejected only when its key or its ``start_time`` cannot be read: a
rejected call loses its customer link, its direction and its outcome, and its transcript lands
on a call synthesized without them. Every other field that the strict readers of
``worker.azure.values`` refuse is read here instead, as well as it can be (a default, a value
cut to the column, the text of a number, nothing), and the oddity is noted: the property's raw
value and the problem, which the call keeps in ``metadata.legacy_oddities``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from worker.azure.values import Unmigratable, count, jsonable, plain, text, when

T = TypeVar("T")

#: Where a call keeps the oddities of its fields (``calls.metadata``).
ODDITIES_KEY = "legacy_oddities"

_NUL = "\x00"
#: How a NUL character (which PostgreSQL text cannot hold) is written in what is kept.
NUL_MARK = "\\u0000"


def kept_json(value: Any) -> Any:
    """``value`` as JSON that ``jsonb`` holds, whatever it is: a NUL becomes ``\\u0000`` text."""
    value = plain(value)
    if isinstance(value, str):
        return value.replace(_NUL, NUL_MARK)
    if isinstance(value, dict):
        return {kept_json(k): kept_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [kept_json(v) for v in value]
    return jsonable(value, "value")


def _as_text(value: Any) -> str:
    """The text of a property that is not a string (a number, a time, bytes...)."""
    found = jsonable(value, "value")
    if isinstance(found, str):
        return found
    if isinstance(found, dict):  # bytes, as {"base64": ...}
        return str(found["base64"])
    return "true" if found is True else "false" if found is False else str(found)


class Oddities:
    """The oddities of one record's fields, in the order they were found."""

    def __init__(self) -> None:
        self.found: dict[str, dict[str, Any]] = {}

    def note(self, name: str, value: Any, problem: str) -> None:
        """Record that property ``name`` (raw ``value``) was odd; a second problem of the same
        property is appended to the first."""
        if name in self.found:
            self.found[name]["problem"] += "; " + problem
        else:
            self.found[name] = {"value": kept_json(value), "problem": problem}

    def read(self, name: str, value: Any, reader: Callable[[Any], T], fallback: T) -> T:
        """``reader(value)``; when it refuses the value, ``fallback``, and the oddity noted."""
        try:
            return reader(value)
        except Unmigratable as error:
            self.note(name, value, str(error))
            return fallback

    def time(self, name: str, value: Any) -> datetime | None:
        """A time, or nothing when it cannot be read."""
        return self.read(name, value, lambda v: when(v, name), None)

    def count(self, name: str, value: Any) -> int | None:
        """A whole non-negative number, or nothing when it is not one."""
        return self.read(name, value, lambda v: count(v, name), None)

    def choice(
        self,
        name: str,
        value: Any,
        allowed: tuple[str, ...],
        *,
        default: str,
        stored_as: str | None = None,
    ) -> str:
        """One of ``allowed``. A value that differs only in case or surrounding spaces is read
        as the one it names; any other value is ``default`` (the oddity says it is stored as
        ``stored_as``, by default ``default``). Either way the oddity is noted."""
        raw = plain(value)
        if raw is None or raw == "":
            return default
        if isinstance(raw, str) and raw in allowed and _NUL not in raw:
            return raw
        if isinstance(raw, str):
            near = raw.strip().lower()
            if near in allowed:
                self.note(name, value, f"{name} {raw!r} read as {near!r}")
                return near
            problem = f"{name} {raw[:40]!r} is not one of {', '.join(allowed)}"
        else:
            problem = f"{name} is a {type(raw).__name__}, not a string"
        self.note(name, value, f"{problem}; stored as {stored_as or default!r}")
        return default

    def text(self, name: str, value: Any, *, max_length: int | None = None) -> str | None:
        """A descriptive text: a number or a time is kept as its text, a NUL is dropped, a value
        longer than the column is cut to it."""
        raw = plain(value)
        if raw is None:
            return None
        found = raw
        if not isinstance(found, str):
            self.note(name, value, f"{name} is a {type(raw).__name__}, not a string; kept as text")
            found = _as_text(raw)
        if _NUL in found:
            self.note(name, value, f"{name} contains a NUL character; dropped")
            found = found.replace(_NUL, "")
        if max_length is not None and len(found) > max_length:
            self.note(
                name,
                value,
                f"{name} is {len(found)} characters long (at most {max_length}); cut",
            )
            found = found[:max_length]
        return found

    def key(self, name: str, value: Any, *, max_length: int) -> str | None:
        """A key that names another record (an organization, a tactic): read exactly or not at
        all, since a key cut or rewritten could name the wrong record."""
        return self.read(name, value, lambda v: text(v, name, max_length=max_length) or None, None)

    def extras(self, properties: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
        """The properties the contract does not name, as JSON; text holding a NUL is kept with
        the NUL written as ``\\u0000``."""
        kept: dict[str, Any] = {}
        for name, value in properties.items():
            if name in known:
                continue
            raw = plain(value)
            if isinstance(raw, str) and _NUL in raw:
                self.note(name, value, f"{name} contains a NUL character; kept as \\u0000")
            kept[name] = kept_json(value)
        return kept

    def names(self) -> tuple[str, ...]:
        return tuple(self.found)
