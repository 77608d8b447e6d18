"""Celery Beat's schedule, as data: every periodic task of the system.

Each entry names a registered task, its period, its queue and an ``expires`` shorter than the
period, so a run that could not start before the next one is due is dropped rather than
stacked. Every job also takes a PostgreSQL advisory lock, so two beats by mistake never do the
work twice. A test checks each entry against the registered tasks.
"""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Legacy Azure data: each run works through batches for up to 20 s (tasks/migration.py).
    "migration.run_batch": {
        "task": "migration.run_batch",
        "schedule": 30.0,
        "options": {"queue": "migration", "expires": 25},
    },
}
