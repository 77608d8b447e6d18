"""Factories for tests: valid objects with overridable defaults.

Payloads come from ``worker.dev.simulate`` (the same generator the demo and benchmarks use), so a
test exercises realistic calls; ``payload(**overrides)`` changes any top-level field.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.dev.simulate import CallShape, simulate_call
from worker.errors import BrokerUnavailable
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

    It announces its start and keeps a journal only when asked (``announce=True``,
    ``journal=True``): most tests have no broker, and use the recorder to make payloads.
    """
    options.setdefault("announce", False)
    options.setdefault("journal", False)
    return simulate_call(random.Random(seed), start=start, shape=shape or CallShape(), **options)


def payload(seed: int = 1, *, start: datetime = DEFAULT_START, **overrides: Any) -> dict[str, Any]:
    """A valid ``calls.finalize`` payload (status ended, revision the wall clock in
    microseconds) with ``overrides`` applied."""
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


def spooled_payload(path: Path) -> dict[str, Any]:
    """The call payload a spool file holds."""
    payload: dict[str, Any] = json.loads(path.read_bytes())["args"][0]
    return payload


class SentMessages:
    """A ``send(task, queue, args)`` (what the spool and ``drain`` take) that keeps what it was
    given; it raises ``BrokerUnavailable`` once ``fail_after`` messages were sent."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[tuple[str, str, list[Any]]] = []
        self.fail_after = fail_after

    def __call__(self, task: str, queue: str, args: list[Any]) -> str:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise BrokerUnavailable("broker down")
        self.sent.append((task, queue, args))
        return f"task-{len(self.sent)}"
