"""Celery Beat's schedule, as data: every periodic task of the system.

Each entry names a registered task, its period, its queue and an ``expires`` shorter than the
period, so a run that could not start before the next one is due is dropped rather than
stacked. Every job also takes a PostgreSQL advisory lock, so two beats by mistake never do the
work twice. A test checks each entry against the registered tasks.
"""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # A round trip through the calls queue, so a metric shows that finalize workers consume
    # (worker/canary.py). Dropped when it waited over 50 s: the canary's age then keeps growing.
    "canary": {
        "task": "maintenance.canary",
        "schedule": 60,
        "options": {"queue": "calls", "expires": 50},
    },
}
