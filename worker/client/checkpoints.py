"""When a call in progress is checkpointed: often enough to survive a lost host, in bounded bytes.

A checkpoint hands off the whole call as it stands (status ``in_progress``, its own revision),
persisted like any revision and replaced by the next one; it is what remains when the runtime's
host itself is lost (the journal is on that host). Sending the whole call every
``CALLSTORE_CHECKPOINT_SECONDS`` would make a 30-minute call cost about 15 times its size, so a
checkpoint is due only when

* the interval has passed since the previous one (or since the call started),
* something was recorded since the previous one, and
* the checkpoints sent so far, with this one, stay within ``BYTES_RATIO`` times the call's
  current size.

For a call that grows steadily this sends one every interval for the first minutes and then at
a spacing of about a third of the call's age (docs/benchmarks.md, "Checkpoints", measures it):
a lost host loses at most that spacing, and all checkpoints together cost at most three times
the call.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The checkpoints of a call never add up to more than this many times its current size.
BYTES_RATIO = 3.0


@dataclass(slots=True)
class CheckpointPlan:
    """One call's checkpoint schedule; ``interval`` 0 turns checkpoints off."""

    interval: float
    started: float
    last_at: float | None = None
    sent_bytes: int = 0
    sent_version: int = 0
    count: int = 0

    def due(self, now: float, size: int, version: int) -> bool:
        """Whether to checkpoint at ``now`` a call of ``size`` bytes at change ``version``."""
        if self.interval <= 0 or version == self.sent_version:
            return False
        since = self.started if self.last_at is None else self.last_at
        if now - since < self.interval:
            return False
        return self.sent_bytes + size <= BYTES_RATIO * size

    def sent(self, now: float, size: int, version: int) -> None:
        self.last_at = now
        self.sent_bytes += size
        self.sent_version = version
        self.count += 1
