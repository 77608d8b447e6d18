"""Which stage of a finalize a sampled stack belongs to: the rules, and the attribution.

A stack is a tuple of ``module:function`` labels, outermost first (``bench.sampler``). The
rules are tried in order and the first one with a pattern matching any frame of the stack
wins, so a rule for something nested (a log line written while persisting, the events sent
while a result is handled, the COPY inside the persist) comes before the rule for what
encloses it, and the loops that enclose everything (the pool's work loop, the main process's
event loop) come last. Patterns are ``fnmatch`` globs on the label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache

from bench.sampler import GC_FRAME


@dataclass(frozen=True, slots=True)
class Stage:
    key: str
    title: str
    patterns: tuple[str, ...]


OTHER = Stage("other", "other", ())

STAGES: tuple[Stage, ...] = (
    Stage("gc", "garbage collection", (GC_FRAME,)),
    Stage(
        "logging", "logging (log lines, log context)", ("logging:*", "structlog.*", "worker.log:*")
    ),
    Stage(
        "events",
        "task events (for Flower)",
        ("celery.events.*", "celery.worker.request:*send_event*"),
    ),
    Stage("result_backend", "result backend (task_track_started)", ("celery.backends.*",)),
    Stage("settlement", "settlement (Redis SET)", ("worker.client.settlement:*",)),
    Stage(
        "validation_encode",
        "validation: re-encode the dict to JSON",
        ("worker.calls.validation:encode",),
    ),
    Stage(
        "validation",
        "validation: model_validate",
        ("worker.calls.validation:*", "models.payload:*", "pydantic.*"),
    ),
    Stage(
        "partitions",
        "partition check",
        ("worker.calls.finalize:partition_months*", "worker.maintenance.partition*"),
    ),
    Stage("rows", "row building", ("worker.calls.persist:build_rows*", "worker.calls.summary:*")),
    Stage("copy", "binary COPY (big tables)", ("worker.calls.persist:copy_children",)),
    Stage(
        "inserts",
        "INSERT pipeline (small tables, transcript, announcement)",
        ("worker.calls.persist:_write_children",),
    ),
    Stage("upsert", "upsert of the calls row", ("worker.calls.persist:*",)),
    Stage("commit", "commit", ("sqlalchemy.*:*commit*", "psycopg.*:*commit*")),
    Stage(
        "session",
        "session and pooled connection (pre-ping)",
        ("worker.db:*", "sqlalchemy.*", "sqlmodel.*"),
    ),
    Stage(
        "base64",
        "envelope: base64 decode of the body",
        (
            "kombu.transport.virtual.base:Message.__init__",
            "kombu.transport.virtual.base:*decode_body",
            "base64:*",
        ),
    ),
    Stage(
        "body_decode",
        "task body: JSON decode",
        (
            "kombu.message:Message.payload",
            "kombu.message:Message.decode",
            "kombu.serialization:*",
            "worker.calls.raw_calls:RawCall.decode",
        ),
    ),
    Stage("envelope_decode", "envelope: JSON decode", ("kombu.utils.json:loads",)),
    Stage(
        "deliveries",
        "delivery count (Redis INCR, DEL)",
        ("worker.intake.deliveries:*",),
    ),
    Stage(
        "intake",
        "the guard's checks (depth, size, shape, expiry)",
        ("worker.intake.gate:*", "worker.intake.compression:*", "worker.calls.messages:*"),
    ),
    Stage("finalize", "finalize, other", ("worker.calls.*",)),
    Stage("task", "task function, other", ("tasks.*",)),
    Stage("signals", "task signals", ("worker.celery_app:*", "celery.utils.dispatch.*")),
    Stage(
        "unacked",
        "unacked record (re-encode + HSET)",
        ("kombu.transport.redis:QoS.append", "worker.intake.transport:QoS.append"),
    ),
    Stage(
        "ack",
        "acknowledgement (ZREM + HDEL)",
        (
            "kombu.message:Message.ack*",
            "kombu.transport.redis:QoS.ack",
            "worker.intake.transport:QoS.ack",
            "kombu.transport.virtual.base:*basic_ack",
        ),
    ),
    Stage("tracing", "task tracing (Celery)", ("celery.app.trace:*",)),
    Stage("handoff", "pool hand-off (pickle, pipes)", ("billiard.*", "celery.concurrency.*")),
    Stage(
        "request",
        "request handling (strategy, Request)",
        ("celery.worker.strategy:*", "celery.worker.request:*", "celery.worker.state:*"),
    ),
    Stage(
        "receive",
        "broker receive (BRPOP, socket reads)",
        ("kombu.transport.*", "worker.intake.transport:*", "kombu.messaging:*", "redis.*"),
    ),
    Stage(
        "loop",
        "event loop, other",
        ("kombu.asynchronous.*", "celery.worker.*", "celery.bootsteps:*"),
    ),
)

TITLES = {stage.key: stage.title for stage in (*STAGES, OTHER)}


@cache
def _frame_matches(label: str, pattern: str) -> bool:
    return fnmatchcase(label, pattern)


def stage_of(stack: tuple[str, ...], stages: tuple[Stage, ...] = STAGES) -> str:
    """The key of the first stage with a pattern matching a frame of ``stack``."""
    for stage in stages:
        for pattern in stage.patterns:
            if any(_frame_matches(label, pattern) for label in stack):
                return stage.key
    return OTHER.key


def attribute(stacks: Iterable[tuple[tuple[str, ...], float]]) -> dict[str, float]:
    """Seconds per stage key of ``(stack, seconds)`` samples."""
    totals: defaultdict[str, float] = defaultdict(float)
    for stack, seconds in stacks:
        totals[stage_of(stack)] += seconds
    return dict(totals)


def heaviest_frames(
    stacks: Iterable[tuple[tuple[str, ...], float]], *, top: int = 4
) -> dict[str, list[tuple[str, float]]]:
    """Per stage, the innermost frames that cost most: what a stage's time is made of."""
    frames: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for stack, seconds in stacks:
        frames[stage_of(stack)][stack[-1] if stack else "?"] += seconds
    return {
        key: sorted(found.items(), key=lambda item: -item[1])[:top] for key, found in frames.items()
    }


def unmatched(
    stacks: Iterable[tuple[tuple[str, ...], float]], *, top: int = 5
) -> list[tuple[str, float]]:
    """The innermost frames of the heaviest stacks no rule matched: where a rule is missing."""
    return heaviest_frames(stacks, top=top).get(OTHER.key, [])
