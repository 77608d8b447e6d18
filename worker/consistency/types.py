"""The vocabulary the checks share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One thing found wrong: ``kind`` is its class, ``keys`` locate it exactly."""

    check: str
    kind: str
    keys: dict[str, Any]
    detail: str
    repairable: bool = False


@dataclass
class CheckContext:
    """What a check may look at: the database, the clock, and how far back to look.

    ``since`` is None for a full check; otherwise only what changed from then on is examined.
    """

    conn: psycopg.Connection[Any]
    settings: Settings
    now: datetime
    since: datetime | None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.since is None


Check = Callable[[CheckContext], Iterator[Discrepancy]]
