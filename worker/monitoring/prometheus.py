"""Prometheus metrics of what Flower cannot show: backlogs, dead letters, spool, partitions,
migration lag, periodic jobs and the canary (docs/operations.md has the alert for each; the
rules ship as prometheus/alerts.yml).

Every value is read when Prometheus scrapes, with short timeouts, so it is never stale; a
server that does not answer makes ``callstore_up{component=...}`` 0 and leaves its metrics out
of that scrape, and the endpoint itself always answers. ``callstore metrics serve`` serves them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from models.enums import DeadLetterStatus
from worker.calls import conflicts
from worker.client.journal import list_journals
from worker.client.queues import queue_depths, redis_client
from worker.client.spool import Spool
from worker.jobs import JobName
from worker.log import get_logger
from worker.maintenance.partitions import horizon
from worker.monitoring import canary
from worker.settings import Settings

log = get_logger("callstore.metrics")

#: Seconds a scrape waits for Redis or PostgreSQL before reporting it down.
TIMEOUT_SECONDS = 2.0


# -- Redis -----------------------------------------------------------------------------------


# -- PostgreSQL ------------------------------------------------------------------------------


def pending_dead_letters(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM failed_payloads WHERE status = %s",
        (DeadLetterStatus.PENDING.value,),
    ).fetchone()
    return int(row[0]) if row else 0


def revision_conflicts(conn: psycopg.Connection[Any]) -> int:
    """Deliveries of a stored (call id, revision) with other content, ever (``call_conflicts``)."""
    exists = conn.execute("SELECT to_regclass('call_conflicts') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    return conflicts.count(conn)


def horizon_months(conn: psycopg.Connection[Any], *, today: date) -> int:
    """Months after the current one that every partitioned table covers without a gap;
    -1 when even the current month is missing somewhere."""
    last = horizon(conn, today=today)
    if last is None:
        return -1
    return (last.year * 12 + last.month) - (today.year * 12 + today.month)


def migration_lag_seconds(conn: psycopg.Connection[Any], *, now: datetime) -> float | None:
    """How far the Azure migration trails its sources: the age of the oldest per-source
    watermark in ``migration_checkpoints`` (the newest source timestamp a completed pass saw).
    None when the table does not exist (yet) or no source has a watermark."""
    exists = conn.execute("SELECT to_regclass('migration_checkpoints') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT min(watermark) FROM migration_checkpoints").fetchone()
    if row is None or row[0] is None:
        return None
    oldest: datetime = row[0]
    return max(0.0, (now - oldest).total_seconds())


def job_success_ages(conn: psycopg.Connection[Any], *, now: datetime) -> dict[str, float]:
    """Seconds since each periodic job last succeeded; +Inf for one that never has, listed from
    the start (every ``JobName``), so an alert on a job that never ran needs no ``absent()``."""
    ages = {job.value: math.inf for job in JobName}
    rows = conn.execute("SELECT job, last_success_at FROM job_runs ORDER BY job").fetchall()
    for job, success in rows:
        ages[job] = math.inf if success is None else max(0.0, (now - success).total_seconds())
    return ages


# -- the collector ---------------------------------------------------------------------------


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


class CallstoreCollector(Collector):
    """Reads every value at scrape time; never raises."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._timeout = timeout

    def describe(self) -> list[Metric]:
        return list(self._families().values())

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "up": _gauge(
                "callstore_up",
                "1 when the component answered this scrape, else 0.",
                ["component"],
            ),
            "queue": _gauge(
                "callstore_queue_depth", "Messages waiting in a Celery queue.", ["queue"]
            ),
            "dead": _gauge(
                "callstore_dead_letter_payloads", "Dead letters waiting for an operator."
            ),
            "conflicts": _gauge(
                "callstore_revision_conflicts",
                "Deliveries of a stored (call id, revision) with other content, ever"
                " (call_conflicts); alert on an increase.",
            ),
            "spool_files": _gauge(
                "callstore_spool_files", "Calls waiting in the local spool for the broker."
            ),
            "spool_age": _gauge(
                "callstore_spool_oldest_age_seconds",
                "Age of the oldest spooled call; 0 when the spool is empty.",
            ),
            "orphaned": _gauge(
                "callstore_orphaned_journals",
                "Call journals of runtime processes that died mid-call, waiting to be recovered.",
            ),
            "horizon": _gauge(
                "callstore_partition_horizon_months",
                "Months after the current one with partitions on every table (-1: current missing).",
            ),
            "migration": _gauge(
                "callstore_migration_lag_seconds",
                "Age of the oldest Azure migration watermark (NaN: no migration state).",
            ),
            "jobs": _gauge(
                "callstore_beat_job_last_success_age_seconds",
                "Seconds since a periodic job last succeeded (+Inf: never); every job, from the start.",
                ["job"],
            ),
            "canary": _gauge(
                "callstore_canary_roundtrip_age_seconds",
                "Seconds since the newest canary that went through the calls queue was sent"
                " (+Inf: none yet).",
            ),
        }

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        now = self._clock()
        up = families["up"]
        up.add_metric(["redis"], self._redis(families))
        up.add_metric(["postgres"], self._postgres(families, now))
        up.add_metric(["spool"], self._spool(families, now))
        yield from families.values()

    def _redis(self, families: dict[str, GaugeMetricFamily]) -> float:
        try:
            client = redis_client(
                self._settings.broker_url.get_secret_value(), timeout=self._timeout
            )
            try:
                depths = queue_depths(client)
            finally:
                client.close()
        except Exception as error:
            log.warning(
                "metrics: Redis did not answer", error_class=type(error).__name__, error=str(error)
            )
            return 0
        for queue, depth in depths.items():
            families["queue"].add_metric([queue], depth)
        return 1

    def _postgres(self, families: dict[str, GaugeMetricFamily], now: datetime) -> float:
        timeout_ms = int(self._timeout * 1000)
        try:
            with psycopg.connect(
                self._settings.libpq_url,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self._timeout)),
                application_name="callstore-metrics",
                options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
            ) as conn:
                dead = pending_dead_letters(conn)
                conflicted = revision_conflicts(conn)
                months = horizon_months(conn, today=now.date())
                lag = migration_lag_seconds(conn, now=now)
                jobs = job_success_ages(conn, now=now)
                canary_age = canary.roundtrip_age_seconds(conn, now=now)
        except Exception as error:
            log.warning(
                "metrics: PostgreSQL did not answer",
                error_class=type(error).__name__,
                error=str(error),
            )
            return 0
        families["dead"].add_metric([], dead)
        families["conflicts"].add_metric([], conflicted)
        families["horizon"].add_metric([], months)
        families["migration"].add_metric([], math.nan if lag is None else lag)
        for job, age in jobs.items():
            families["jobs"].add_metric([job], age)
        families["canary"].add_metric([], math.inf if canary_age is None else canary_age)
        return 1

    def _spool(self, families: dict[str, GaugeMetricFamily], now: datetime) -> float:
        try:
            stats = Spool(Path(self._settings.spool_dir)).stats(now=now.timestamp())
            journals = list_journals(Path(self._settings.spool_dir), now=now.timestamp())
        except OSError as error:
            log.warning(
                "metrics: spool unreadable", error_class=type(error).__name__, error=str(error)
            )
            return 0
        families["spool_files"].add_metric([], stats.files)
        families["spool_age"].add_metric([], stats.oldest_age_seconds or 0.0)
        families["orphaned"].add_metric([], sum(not j.live for j in journals))
        return 1


def registry_for(settings: Settings, **options: Any) -> CollectorRegistry:
    """A registry with only callstore's metrics (no process or Python metrics)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(CallstoreCollector(settings, **options))
    return registry


def serve(settings: Settings, *, port: int, address: str, stop: threading.Event) -> None:
    """Serve ``/metrics`` on ``address:port`` until ``stop`` is set."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=address, registry=registry_for(settings))
    try:
        stop.wait()
    finally:
        server.shutdown()
        thread.join(timeout=5)
