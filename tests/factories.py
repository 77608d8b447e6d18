"""Factories for tests: valid objects with overridable defaults.

Payloads come from ``worker.dev.simulate`` (the same generator the demo and benchmarks use), so a
test exercises realistic calls; ``payload(**overrides)`` changes any top-level field.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.dev.simulate import CallShape, simulate_call
from worker.settings import Settings

DEFAULT_START = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)


def make_settings(**overrides: Any) -> Settings:
    """Settings from explicit values only: no ``.env``, no ``stack.env``, no ``CALLSTORE_*``."""
    values: dict[str, Any] = {
        "database_url": "postgresql://postgres@/callstore?host=/nonexistent",
        "broker_url": "redis+socket:///nonexistent/redis.socket",
        "spool_dir": Path("/nonexistent/spool"),
        "broker_visibility_timeout": 30,
        "finalize_retry_backoff_max": 2,
        "publish_timeout_seconds": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def recorder(
    seed: int = 1,
    *,
    start: datetime = DEFAULT_START,
    shape: CallShape | None = None,
    **options: Any,
) -> Any:
    """A realistic recorded call (``worker.client.recorder.CallRecorder``), not yet finalized.

    It announces its start only when asked (``announce=True``): most tests have no broker.
    """
    options.setdefault("announce", False)
    return simulate_call(random.Random(seed), start=start, shape=shape or CallShape(), **options)


def payload(seed: int = 1, *, start: datetime = DEFAULT_START, **overrides: Any) -> dict[str, Any]:
    """A valid ``calls.finalize`` payload (revision 1, status ended) with ``overrides`` applied."""
    rec = recorder(seed, start=start)
    rec.update_status("ended")
    body: dict[str, Any] = rec.build_payload()
    body.update(overrides)
    return body


def small_payload(
    seed: int = 1, *, start: datetime = DEFAULT_START, **overrides: Any
) -> dict[str, Any]:
    """A valid payload of a short call (fast to write), for tests that need many calls."""
    rec = recorder(seed, start=start, shape=CallShape(min_messages=4, max_messages=8))
    rec.update_status("ended")
    body: dict[str, Any] = rec.build_payload()
    body.update(overrides)
    return body
