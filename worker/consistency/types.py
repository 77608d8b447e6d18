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
    ``shared`` holds what one check reads and a later one of the same run may reuse (the Azure
    comparison reads every call once; the counts per source take theirs from that read).
    """

    conn: psycopg.Connection[Any]
    settings: Settings
    now: datetime
    since: datetime | None
    stats: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.since is None


Check = Callable[[CheckContext], Iterator[Discrepancy]]
