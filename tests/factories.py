"""Factories for tests: valid objects with overridable defaults.

Payloads come from ``worker.dev.simulate`` (the same generator the demo and benchmarks use), so a
test exercises realistic calls; ``payload(**overrides)`` changes any top-level field.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from worker.dev.simulate import CallShape, simulate_call
from worker.errors import BrokerUnavailable
from worker.settings import Settings

#: When simulated calls start: two days before the tests run, so they always fall inside the
#: window the workers accept (retention behind, clock skew ahead) whatever the date.
DEFAULT_START = datetime.now(UTC).replace(minute=30, second=0, microsecond=0) - timedelta(days=2)

#: The payload's fields that hold an instant, besides each entry's ``timestamp``.
_CALL_INSTANTS = ("started_at", "ended_at", "finalized_at")


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


def moved_to(body: dict[str, Any], start: datetime) -> dict[str, Any]:
    """``body`` as a producer whose clock read ``start`` at the call's start would send it:
    every instant moved by the same amount (the recorder itself refuses a clock at the ends of
    the calendar, so such payloads come from other producers)."""
    shift = start - datetime.fromisoformat(body["started_at"])

    def moved(value: str) -> str:
        return (datetime.fromisoformat(value) + shift).isoformat()

    out = {**body, **{k: moved(body[k]) for k in _CALL_INSTANTS if body.get(k)}}
    for name, entries in body.items():
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            out[name] = [
                {**e, "timestamp": moved(e["timestamp"])} if "timestamp" in e else e
                for e in entries
            ]
    return out


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
