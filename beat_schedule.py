"""Celery Beat's schedule, as data: every periodic task of the system.

Each entry names a registered task, its period, its queue and an ``expires`` shorter than the
period, so a run that could not start before the next one is due is dropped rather than
stacked. Every job also takes a PostgreSQL advisory lock, so two beats by mistake never do the
work twice. A test checks each entry against the registered tasks.
"""

from __future__ import annotations

from typing import Any

HOUR = 3600.0

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Incremental: examines what changed since the previous run, so hourly costs little.
    "consistency-check": {
        "task": "consistency.check",
        "schedule": HOUR,
        "options": {"queue": "maintenance", "expires": HOUR - 300},
    },
}
