"""Celery Beat's schedule, as data: every periodic task of the system.

Each entry names a registered task, its period, its queue and an ``expires`` shorter than the
period, so a run that could not start before the next one is due is dropped rather than
stacked. Every job also takes a PostgreSQL advisory lock, so two beats by mistake never do the
work twice. A test checks each entry against the registered tasks.
"""

from __future__ import annotations

from typing import Any

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Partitions from the current month to CALLSTORE_PARTITION_PREMAKE_MONTHS ahead. Several
    # runs a day, so a failed one is retried long before a month starts without partitions.
    "rotate-partitions": {
        "task": "maintenance.rotate_partitions",
        "schedule": 6 * HOUR,
        "options": {"queue": "maintenance", "expires": 1 * HOUR},
    },
    # Expired calls deleted, expired months archived, archives past their grace dropped.
    "enforce-retention": {
        "task": "maintenance.enforce_retention",
        "schedule": DAY,
        "options": {"queue": "maintenance", "expires": 2 * HOUR},
    },
    # Calls spooled on a volume the workers share, re-published once the broker is back.
    "flush-spool": {
        "task": "maintenance.flush_spool",
        "schedule": MINUTE,
        "options": {"queue": "maintenance", "expires": 50},
    },
    # Incremental: examines what changed since the previous run, so hourly costs little.
    "consistency-check": {
        "task": "consistency.check",
        "schedule": HOUR,
        "options": {"queue": "maintenance", "expires": HOUR - 5 * MINUTE},
    },
    # Full, weekly: what an incremental run cannot see, such as a child row edited or deleted
    # by hand (that does not move its call's updated_at) or an Azure entity changed in place.
    "consistency-check-full": {
        "task": "consistency.check",
        "schedule": 7 * DAY,
        "kwargs": {"full": True},
        "options": {"queue": "maintenance", "expires": 6 * HOUR},
    },
    # A round trip through the calls queue, so a metric shows that finalize workers consume
    # (worker/monitoring/canary.py). Dropped when it waited over 50 s: the canary's age then keeps growing.
    "canary": {
        "task": "maintenance.canary",
        "schedule": MINUTE,
        "options": {"queue": "calls", "expires": 50},
    },
    # Legacy Azure data: each run works through batches for up to 20 s (tasks/migration.py).
    "migration-run-batch": {
        "task": "migration.run_batch",
        "schedule": 30.0,
        "options": {"queue": "migration", "expires": 25},
    },
}
