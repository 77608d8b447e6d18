"""Where each legacy source stands: its pass, its watermark, its counts.

The migration works in *rounds*. A round is one pass over every source, in the order of
``worker.azure.sources.SOURCES``; a batch continues the sources whose pass count is the lowest,
so a source's pass starts only when the sources before it finished theirs in this round. A
pass reads every entity whose service ``Timestamp`` is at or after its ``pass_from`` (the last
watermark less the overlap window; everything, the first time), and when it completes, the
newest ``Timestamp`` it saw becomes the watermark.

The migration is *caught up* when the last round changed nothing in any source: every record
read was already stored as it is (or already rejected for the same reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from worker.azure.readers import Page
from worker.azure.sources import SOURCES, Source


@dataclass(slots=True)
class Checkpoint:
    """A ``migration_checkpoints`` row (see ``models.migration.MigrationCheckpoint``)."""

    source: str
    watermark: datetime | None = None
    pass_open: bool = False
    pass_from: datetime | None = None
    pass_high: datetime | None = None
    continuation: Any = None
    position: str | None = None
    passes: int = 0
    pass_scanned: int = 0
    pass_changed: int = 0
    last_pass_changed: int | None = None
    scanned: int = 0
    migrated: int = 0
    rejected: int = 0
    busy_seconds: float = 0.0
    last_batch_at: datetime | None = None

    def start_pass(self, overlap: timedelta) -> None:
        self.pass_open = True
        self.pass_from = None if self.watermark is None else self.watermark - overlap
        self.pass_high = None
        self.continuation = None
        self.position = None
        self.pass_scanned = 0
        self.pass_changed = 0

    def advance(self, page: Page) -> None:
        """Move past ``page`` (its writes are in the same transaction as this checkpoint)."""
        self.continuation = page.continuation
        newest = page.newest
        if newest is not None and (self.pass_high is None or newest > self.pass_high):
            self.pass_high = newest
        if page.records:
            self.position = page.records[-1].key
        self.pass_scanned += len(page.records)
        self.scanned += len(page.records)

    def count(self, *, migrated: int, rejected: int) -> None:
        self.migrated += migrated
        self.rejected += rejected
        self.pass_changed += migrated + rejected

    def complete_pass(self) -> None:
        if self.pass_high is not None and (
            self.watermark is None or self.pass_high > self.watermark
        ):
            self.watermark = self.pass_high
        self.passes += 1
        self.last_pass_changed = self.pass_changed
        self.pass_open = False
        self.continuation = None
        self.position = None

    @property
    def caught_up(self) -> bool:
        return not self.pass_open and self.last_pass_changed == 0


_COLUMNS = tuple(f.name for f in fields(Checkpoint))

_LOAD = sql.SQL("SELECT {} FROM migration_checkpoints").format(
    sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
)
_SAVE = sql.SQL(
    "INSERT INTO migration_checkpoints ({cols}, updated_at) VALUES ({vals}, now())"
    " ON CONFLICT (source) DO UPDATE SET {sets}, updated_at = now()"
).format(
    cols=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
    vals=sql.SQL(", ").join(sql.Placeholder(c) for c in _COLUMNS),
    sets=sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in _COLUMNS[1:]
    ),
)


def load(conn: psycopg.Connection[Any]) -> dict[str, Checkpoint]:
    """The checkpoint of every source (a fresh one for a source never read)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        stored = {row["source"]: Checkpoint(**row) for row in cursor.execute(_LOAD)}
    return {s.name: stored.get(s.name) or Checkpoint(s.name) for s in SOURCES}


def save(conn: psycopg.Connection[Any], checkpoints: Iterable[Checkpoint]) -> None:
    """Upsert ``checkpoints`` in ``conn``'s open transaction (the batch's own)."""
    rows = []
    for checkpoint in checkpoints:
        values = asdict(checkpoint)
        if checkpoint.continuation is not None:
            values["continuation"] = Jsonb(checkpoint.continuation)
        rows.append(values)
    with conn.cursor() as cursor:
        cursor.executemany(_SAVE, rows)  # pipelined: one round trip


_RESCAN = """
UPDATE migration_checkpoints
   SET watermark = NULL, last_pass_changed = NULL, pass_open = false, pass_from = NULL,
       pass_high = NULL, continuation = NULL, position = NULL, pass_scanned = 0,
       pass_changed = 0, updated_at = now()
 WHERE source = ANY(%(sources)s)
RETURNING source
"""


def rescan(conn: psycopg.Connection[Any], names: Iterable[str]) -> list[str]:
    """Make the next pass of each named source read every record again, from the start: the
    records that a newer callstore takes (after an upgrade) are migrated, and their rejects
    resolved; the others change nothing, since every write is idempotent. A pass already open
    starts again. The caller holds the migration's lock (no batch may save its checkpoints
    meanwhile). Returns the sources changed (a source never read has no checkpoint and needs
    none)."""
    rows = conn.execute(_RESCAN, {"sources": list(names)}).fetchall()
    return sorted(row[0] for row in rows)


def due(checkpoints: dict[str, Checkpoint]) -> list[Source]:
    """The sources this round still has to read, in foreign-key order."""
    lowest = min(c.passes for c in checkpoints.values())
    return [s for s in SOURCES if checkpoints[s.name].passes == lowest]


def caught_up(checkpoints: dict[str, Checkpoint]) -> bool:
    """Every source finished the same number of passes, and none changed anything last time."""
    passes = {c.passes for c in checkpoints.values()}
    return len(passes) == 1 and all(c.caught_up for c in checkpoints.values())
