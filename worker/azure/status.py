"""Where the migration stands, per source: what was read and written, what is left, how fast.

``left`` asks Azure (keys only) how many records lie beyond the checkpoint: during a pass, the
records of the pass ahead of its position; between passes, the records written after the
watermark. ``lag`` is how far the newest of those is ahead of the watermark (0 when none
is). ``rate`` is records read per second of batch time, and ``eta`` is ``left / rate`` in
batch time (beat runs a batch every period; ``callstore migrate azure run`` runs them back to
back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from worker.azure import checkpoints
from worker.azure.checkpoints import Checkpoint
from worker.azure.client import AzureStorage
from worker.azure.readers import count_ahead
from worker.azure.sources import SOURCES

_OPEN_REJECTS = """
SELECT source, count(*) FROM migration_rejects WHERE resolved_at IS NULL GROUP BY source
"""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str
    scanned: int
    migrated: int
    rejected: int
    open_rejects: int
    passes: int
    pass_open: bool
    caught_up: bool
    watermark: datetime | None
    last_batch_at: datetime | None
    left: int
    left_capped: bool
    lag: timedelta | None
    rate: float | None
    eta: timedelta | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "scanned": self.scanned,
            "migrated": self.migrated,
            "rejected": self.rejected,
            "open_rejects": self.open_rejects,
            "passes": self.passes,
            "pass_open": self.pass_open,
            "caught_up": self.caught_up,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "left": self.left,
            "left_capped": self.left_capped,
            "lag_s": self.lag.total_seconds() if self.lag is not None else None,
            "rate_per_s": round(self.rate, 1) if self.rate is not None else None,
            "eta_s": self.eta.total_seconds() if self.eta is not None else None,
        }


def source_status(
    storage: AzureStorage,
    checkpoint: Checkpoint,
    *,
    open_rejects: int = 0,
    cap: int = 100_000,
) -> SourceStatus:
    source = next(s for s in SOURCES if s.name == checkpoint.source)
    if checkpoint.pass_open:
        ahead = count_ahead(
            storage,
            source,
            newer_than=checkpoint.pass_from,
            inclusive=True,
            after_key=checkpoint.position,
            cap=cap,
        )
    else:
        ahead = count_ahead(storage, source, newer_than=checkpoint.watermark, cap=cap)
    lag: timedelta | None = None
    if checkpoint.watermark is not None:
        lag = timedelta(0)
        if ahead.newest is not None and ahead.newest > checkpoint.watermark:
            lag = ahead.newest - checkpoint.watermark
    rate = checkpoint.scanned / checkpoint.busy_seconds if checkpoint.busy_seconds > 0 else None
    eta = timedelta(seconds=ahead.count / rate) if rate else None
    if ahead.count == 0:
        eta = timedelta(0)
    return SourceStatus(
        source=source.name,
        scanned=checkpoint.scanned,
        migrated=checkpoint.migrated,
        rejected=checkpoint.rejected,
        open_rejects=open_rejects,
        passes=checkpoint.passes,
        pass_open=checkpoint.pass_open,
        caught_up=checkpoint.caught_up,
        watermark=checkpoint.watermark,
        last_batch_at=checkpoint.last_batch_at,
        left=ahead.count,
        left_capped=ahead.capped,
        lag=lag,
        rate=rate,
        eta=eta,
    )


def migration_status(
    storage: AzureStorage, conn: psycopg.Connection[Any], *, cap: int = 100_000
) -> list[SourceStatus]:
    """The status of every source, in migration order."""
    state = checkpoints.load(conn)
    rejects = dict(conn.execute(_OPEN_REJECTS).fetchall())
    return [
        source_status(storage, state[s.name], open_rejects=int(rejects.get(s.name, 0)), cap=cap)
        for s in SOURCES
    ]
