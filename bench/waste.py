"""Where the time goes: the waste the anatomy shows, each remedy measured as a ratio.

Every figure here is a micro-measurement on the standard simulated call, in this process, of
what one stage does now against what the remedy would do instead (best of several repeats, in
milliseconds per call). ``rank`` joins them with the stage costs the anatomy measured in the
worker itself and orders the list by the CPU each remedy would save per call.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pydantic_core
from celery import Celery
from sqlalchemy import create_engine

from bench.common import best_of, standard_payloads
from models.payload import CallPayload
from worker.calls.validation import encode
from worker.client.queues import redis_client
from worker.db import raw_connection, session_scope
from worker.log import configure_logging, get_logger
from worker.settings import ClientSettings, Settings

_REPEATS = 5
#: What the first anatomy (2026-11-23: worker 33.4 ms of CPU per call, 2.32 times PostgreSQL's)
#: ranked, and is gone: where it was, what replaced it, and the anatomy stages it cost with
#: their ms per call then; what they cost now is read from this run's anatomy.
REMOVED: tuple[tuple[str, str, dict[str, float]], ...] = (
    (
        "the body decoded in the main process and pickled to the pool beside its raw bytes",
        (
            "a `Request` for `calls.finalize` (`tasks/finalize_request.py`) hands the pool the "
            "call's bytes, split from the body undecoded (`worker/calls/raw_calls.py`), decoded "
            "once in the pool by pydantic-core"
        ),
        {"body_decode": 4.26, "handoff": 3.36},
    ),
    (
        "garbage collection in the pool scanning the whole heap",
        "`gc.freeze()` in the main process before the pool forks",
        {"gc": 3.02},
    ),
    (
        "the partition check: `month_start` of every entry",
        "the earliest and latest timestamp of each timeline, found once during validation",
        {"partitions": 1.35},
    ),
    (
        "the unacknowledged record re-encoding the whole envelope",
        "the transport records the entry as it was taken (`worker/intake/transport.py`)",
        {"unacked": 1.18},
    ),
    (
        "a Redis client built for every task event, record and acknowledgement",
        "one Redis client per kombu channel (`worker/intake/clients.py`)",
        {"events": 2.14},
    ),
)


def _ms_per_call(bodies: list[Any], work: Callable[[Any], object], repeats: int) -> float:
    """Best-of-``repeats`` milliseconds per item of ``work`` over ``bodies``."""

    def once() -> float:
        began = time.perf_counter()
        for body in bodies:
            work(body)
        return (time.perf_counter() - began) * 1000 / len(bodies)

    return best_of(repeats, once)


def _envelope(body: bytes) -> dict[str, Any]:
    """What kombu's Redis transport stores for one message (the body base64-encoded)."""
    return {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": "calls.finalize", "id": "0" * 36, "argsrepr": "<call>"},
        "properties": {
            "correlation_id": "0" * 36,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": "calls"},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": "0" * 36,
        },
    }


def _log_line_ms(repeats: int) -> float:
    """One INFO line through the worker's logging configuration (rendered, not written)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(
        ClientSettings(_env_file=None, broker_url="redis://localhost/0"),
        stream=StringIO(),
    )
    log = get_logger("callstore.bench")
    try:
        lines = list(range(200))
        return _ms_per_call(
            lines, lambda n: log.info("call finalized", call_id="x", rows=n), repeats
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def _checkout_ms(settings: Settings, *, pre_ping: bool, repeats: int) -> float:
    """One ``session_scope`` with its raw connection, as a finalize takes it, per call."""
    engine = create_engine(settings.sqlalchemy_url, pool_size=1, pool_pre_ping=pre_ping)
    try:

        def checkout(_: int) -> object:
            with session_scope(engine) as session:
                return raw_connection(session)

        return _ms_per_call(list(range(200)), checkout, repeats)
    finally:
        engine.dispose()


def _event_ms(settings: Settings, repeats: int) -> dict[str, float]:
    """One task event through Celery's dispatcher, against the same JSON published on one
    kept Redis connection."""
    app = Celery("bench-events", broker=settings.broker_url.get_secret_value())
    fields = {"uuid": "0" * 36, "result": "{'outcome': 'persisted'}", "runtime": 0.02}
    client = redis_client(settings.broker_url.get_secret_value())
    try:
        with app.events.default_dispatcher(hostname="bench@events") as dispatcher:
            celery_ms = _ms_per_call(
                list(range(200)), lambda _: dispatcher.send("task-succeeded", **fields), repeats
            )
        text = json.dumps({"type": "task-succeeded", **fields, "hostname": "bench@events"})
        raw_ms = _ms_per_call(
            list(range(200)), lambda _: client.publish("/0.celeryev/task.succeeded", text), repeats
        )
    finally:
        client.close()
        app.close()
    return {"event_celery_ms": celery_ms, "event_one_connection_ms": raw_ms}


def run(settings: Settings, *, quick: bool) -> dict[str, Any]:
    """The micro-measurements; ``settings`` name the bench stack's PostgreSQL and Redis."""
    repeats = 3 if quick else _REPEATS
    payloads = standard_payloads(20 if quick else 40, seed=61)
    bodies = [encode(p) for p in payloads]
    envelopes = [_envelope(b) for b in bodies]
    compressed = [zlib.compress(b) for b in bodies]
    raw_bytes = sum(len(b) for b in bodies) / len(bodies)

    def measure(items: list[Any], work: Callable[[Any], object]) -> float:
        return _ms_per_call(items, work, repeats)

    def validate_as_now(body: bytes) -> object:
        raw = pydantic_core.from_json(body)  # as the pool decodes a call's bytes (``RawCall``)
        encode(raw)
        return CallPayload.model_validate(raw)

    return {
        "payload_bytes_mean": raw_bytes,
        "reencode_ms": measure(payloads, encode),
        "model_validate_ms": measure(payloads, CallPayload.model_validate),
        "validate_as_now_ms": measure(bodies, validate_as_now),
        "model_validate_json_ms": measure(bodies, CallPayload.model_validate_json),
        "base64_decode_ms": measure([e["body"] for e in envelopes], base64.b64decode),
        "base64_encode_ms": measure(bodies, base64.b64encode),
        "zlib_compress_ms": measure(bodies, zlib.compress),
        "zlib_decompress_ms": measure(compressed, zlib.decompress),
        "zlib_ratio": sum(len(c) for c in compressed) / sum(len(b) for b in bodies),
        "log_line_ms": _log_line_ms(repeats),
        "checkout_pre_ping_ms": _checkout_ms(settings, pre_ping=True, repeats=repeats),
        "checkout_plain_ms": _checkout_ms(settings, pre_ping=False, repeats=repeats),
        **_event_ms(settings, repeats),
    }


@dataclass(frozen=True, slots=True)
class Waste:
    """One line of the ranked list: what it costs now, what would remove it, what that saves."""

    where: str
    now_ms: float
    change: str
    saves_ms: float
    risk: str


def _stage(anatomy: dict[str, Any], key: str, role: str | None = None) -> float:
    by_role = anatomy["stages"].get(key, {})
    if role is None:
        return float(sum(by_role.values()))
    return float(by_role.get(role, 0.0))


def rank(w: dict[str, Any], a: dict[str, Any]) -> list[Waste]:
    """The waste, dearest remedy-saving first, from the micro-measurements ``w`` and the
    anatomy ``a`` (stage costs measured in the worker)."""
    body_kib = w["payload_bytes_mean"] / 1024
    decode_pool = _stage(a, "body_decode", "pool")
    validation_pool = _stage(a, "validation") + _stage(a, "validation_encode")
    validate_ratio = w["model_validate_json_ms"] / w["validate_as_now_ms"]
    logging_now = _stage(a, "logging")
    unacked = _stage(a, "unacked")
    b64 = _stage(a, "base64")
    events = _stage(a, "events")
    session = _stage(a, "session")
    compressed_share = w["zlib_ratio"] * 4 / 3
    compression_saves = (b64 + unacked) * (1 - compressed_share) - w["zlib_decompress_ms"]
    items = [
        Waste(
            "decode → dict → re-encode → `model_validate` in the pool",
            decode_pool + validation_pool,
            "validate straight from the message's JSON bytes (`model_validate_json`): the pool "
            "already gets the bytes (`RawCall`), but decodes them to a dict, re-encodes the "
            "dict for the size check and validates the dict "
            f"(micro-measured: {validate_ratio:.2f} of today's chain); the dead-letter and "
            "retry paths need the decoded payload only when they run",
            (decode_pool + validation_pool) * (1 - validate_ratio),
            "medium: a retry publishes the decoded arguments today (`request.args`); it would "
            "publish the bytes instead",
        ),
        Waste(
            "task events: `task-received`, `task-started`, `task-succeeded`",
            events,
            "keep all three (Flower needs them for every finalize) but publish them straight on "
            "one kept connection instead of through Celery's dispatcher and kombu's producer "
            f"(micro-measured: {w['event_celery_ms']:.3f} ms per event through Celery's "
            f"dispatcher, {w['event_one_connection_ms']:.3f} ms on one connection)",
            min(events, 3 * max(w["event_celery_ms"] - w["event_one_connection_ms"], 0.0)),
            "medium: kombu's event channel internals; `task_track_started` costs nothing "
            "today (results are ignored, so no STARTED state is stored)",
        ),
        Waste(
            f"compression off for the standard call ({body_kib:.0f} KiB < the 256 KiB threshold)",
            b64 + unacked,
            f"compress from about 64 KiB: the body shrinks to {w['zlib_ratio']:.2f} of its "
            "size, so base64, the unacked record and Redis's memory and AOF shrink with it; "
            f"costs {w['zlib_decompress_ms']:.2f} ms to decompress in the worker and "
            f"{w['zlib_compress_ms']:.2f} ms to compress in the runtime's hand-off thread",
            max(compression_saves, 0.0),
            "low: Celery's own `compression` header; the runtime pays the compression in its "
            "publishing thread, not its event loop",
        ),
        Waste(
            "logging: three lines per call (received, finalized, succeeded)",
            logging_now,
            "keep our `call finalized` line (it carries the outcome, rows and duration) and "
            "log Celery's `received`/`succeeded` lines at DEBUG "
            f"({w['log_line_ms']:.3f} ms per line measured)",
            logging_now * 2 / 3,
            "low: operators see the same in Flower and in the finalize line",
        ),
        Waste(
            "base64 of every body in kombu's Redis transport",
            b64,
            "a Redis channel that stores JSON bodies as they are (the envelope says "
            "`body_encoding` per message, so old and new messages mix); also 25% less Redis "
            f"memory per queued call ({w['base64_encode_ms']:.2f} ms saved in the producer too)",
            b64,
            "medium: a kombu transport subclass",
        ),
        Waste(
            "session: SQLAlchemy session and `pool_pre_ping` (a `SELECT 1` per call)",
            session,
            "take the psycopg connection from the pool without the pre-ping; a connection "
            "broken by a PostgreSQL restart fails its task once, which retries "
            f"(`DatabaseUnavailable`); micro-measured checkout {w['checkout_pre_ping_ms']:.2f} "
            f"ms with the ping, {w['checkout_plain_ms']:.2f} ms without",
            min(session, max(w["checkout_pre_ping_ms"] - w["checkout_plain_ms"], 0.0)),
            "low to medium: one retried task per pooled connection after each restart",
        ),
    ]
    return sorted(items, key=lambda item: -item.saves_ms)


def _then_and_now(stages: dict[str, float], a: dict[str, Any]) -> str:
    return ", ".join(
        f"{key.replace('_', ' ')} {then:.2f} → {_stage(a, key):.2f}" for key, then in stages.items()
    )


def markdown(w: dict[str, Any], a: dict[str, Any]) -> list[str]:
    items = rank(w, a)
    saved = sum(item.saves_ms for item in items)
    worker = a["cpu_ms_per_call"]["worker"]
    postgres = a["cpu_ms_per_call"]["postgres"]
    lines = [
        "### Where the time goes",
        "",
        (
            "The waste the table shows, ranked by the CPU its remedy would save per call. *Now* is "
            "the stage as measured in the worker above; *saves* applies the ratio micro-measured "
            "in `bench/waste.py` (same run, standard calls) to it."
        ),
        "",
        "| # | where | now ms | change | saves ms | risk |",
        "|---|---|---|---|---|---|",
    ]
    for n, item in enumerate(items, 1):
        lines.append(
            f"| {n} | {item.where} | {item.now_ms:.2f} | {item.change} | "
            f"{item.saves_ms:.2f} | {item.risk} |"
        )
    lines += [
        "",
        "Already removed (the stages' ms per call in the first anatomy, 2026-11-23 → in this run):",
        "",
        *(f"- {where}: {change} ({_then_and_now(stages, a)})" for where, change, stages in REMOVED),
        "",
        (
            f"All of the table's remedies together would save about {saved:.1f} of the {worker:.1f} ms; "
            f"the worker would then spend about {(worker - saved) / postgres:.2f} × "
            "PostgreSQL's CPU per call. What remains is the work itself (validation, building "
            "and writing ~800 rows) and Celery's per-message machinery in the main process "
            "(receive, unacked record, ack, events), which removing waste does not touch: "
            "≤ 0.5 × PostgreSQL needs fewer messages per call (batching several calls per "
            "transaction and per message) rather than cheaper ones."
        ),
    ]
    return lines
