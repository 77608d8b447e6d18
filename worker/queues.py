"""The Celery queues of the system (``worker.celery_app`` routes to them; metrics count them)."""

from __future__ import annotations

#: ``calls``: finalize (and the canary); ``maintenance``: beat jobs; ``migration``: Azure batches.
QUEUES: tuple[str, ...] = ("calls", "maintenance", "migration")
