"""The soak: many calls through ``CallRecorder`` while faults are injected on a schedule.

``python -m bench.soak --calls 10000 [--workers 2] [--json FILE]``

Faults, all at once on one system: a worker SIGKILLed every few seconds (and started again),
PostgreSQL restarted, PostgreSQL read-only for a while (a standby after a failover), Redis
restarted (calls finalized meanwhile go to the spool), a share of payloads delivered twice, a
burst of calls whose first delivery is sent twice at the same moment, 1% malformed payloads, a
poison message (a payload nested 600 levels deep, sent by a producer of its own) in the middle
of the flow, a maintenance run, and runtime processes SIGKILLed mid-call (``bench.soak_crashes``:
5% of the calls). At the end every call is checked one by one: a valid call must be in ``calls``
exactly once with exactly its child rows, a malformed one and the poison message in
``failed_payloads``, a crashed one stored once as ``interrupted`` with the prefix its runtime
recorded, and nothing else may be there.

A short mode (``run(SoakConfig.short())``) runs in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import soak_crashes
from bench.common import BenchStack, bench_stack, percentile
from models.payload import QUEUE, TASK_NAME
from worker.client.delivery import publisher_send
from worker.client.drain import drain
from worker.client.publisher import Publisher
from worker.client.spool import Spool
from worker.dev import processes, stack
from worker.dev.raw_messages import nested, publish_raw, task_body
from worker.dev.simulate import CallShape, simulate_call
from worker.settings import Settings


@dataclass
class SoakConfig:
    calls: int = 10_000
    workers: int = 2
    #: Calls handed off per second: below what the workers sustain, so faults land while work
    #: is flowing instead of on a backlog.
    rate: float = 12.0
    concurrency: int = 8
    malformed_ratio: float = 0.01
    duplicate_ratio: float = 0.05
    #: Share of the calls made by runtime processes SIGKILLed mid-call, a few calls each.
    crash_ratio: float = 0.05
    calls_per_crashed_runtime: int = 5
    #: The runtimes' journal flush interval (CALLSTORE_JOURNAL_FLUSH_SECONDS).
    journal_flush_seconds: float = 0.25
    kill_every_seconds: float = 6.0
    postgres_restart_at: float = 0.3
    read_only_at: float = 0.4
    read_only_seconds: float = 5.0
    maintenance_at: float = 0.5
    poison_at: float = 0.55
    #: From this share of the run on, ``concurrent_duplicates`` calls have their first
    #: delivery sent twice at the same moment.
    concurrent_duplicates_at: float = 0.6
    concurrent_duplicates: int = 20
    redis_restart_at: float = 0.7
    visibility_timeout: int = 8
    settle_timeout: float = 600.0
    seed: int = 99
    shape: CallShape = field(default_factory=lambda: CallShape(10, 40))

    @classmethod
    def short(cls) -> SoakConfig:
        """A minute-long run for the test suite: every fault once."""
        return cls(
            calls=120,
            workers=2,
            rate=15.0,
            malformed_ratio=0.05,
            duplicate_ratio=0.1,
            kill_every_seconds=1e9,  # one scheduled kill instead (see kill_once_at)
            read_only_seconds=2.0,
            concurrent_duplicates=6,
            settle_timeout=180.0,
            shape=CallShape(4, 12),
            crash_ratio=0.05,
            calls_per_crashed_runtime=3,
        )


@dataclass
class FaultRecord:
    name: str
    started: float
    ended: float = 0.0
    recovered_after_s: float | None = None


@dataclass
class SoakResult:
    calls: int
    valid: int
    malformed: int
    duplicates_sent: int
    concurrent_duplicates_sent: int = 0
    poison_dead_lettered: bool = False
    #: Deliveries of one revision with other content: none expected (duplicates are identical).
    revision_conflicts: int = 0
    persisted: int = 0
    lost: int = 0
    duplicated: int = 0
    dead_lettered: int = 0
    wrongly_dead_lettered: int = 0
    refused_by_recorder: int = 0
    spooled_by_recorder: int = 0
    e2e_p50_ms: float = 0.0
    e2e_p99_ms: float = 0.0
    duration_s: float = 0.0
    worker_kills: int = 0
    #: Runtime processes SIGKILLed mid-call, and what became of their calls.
    runtime_kills: int = 0
    crashed_calls: int = 0
    interrupted_recovered: int = 0
    interrupted_wrong: int = 0
    crashed_entries_recorded: int = 0
    crashed_entries_stored: int = 0
    faults: list[FaultRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _malform(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    bad = copy.deepcopy(body)
    choice = rng.randrange(5)
    if choice == 0:
        bad["status"] = "finished"
    elif choice == 1:
        del bad["tenant_id"]
    elif choice == 2:
        bad["messages"][0]["content"] += "\x00"
    elif choice == 3:
        bad["metrics"][0]["metric_type"] = "llm_tokens"
    else:
        bad["started_at"] = "yesterday"
    return bad


class Supervisor:
    """Keeps ``count`` workers running; the killer SIGKILLs one and starts a replacement."""

    def __init__(self, settings: Settings, count: int, log_dir: Path) -> None:
        self.env = processes.settings_env(settings)
        self.log_dir = log_dir
        self.generation = 0
        self.workers = [self._start() for _ in range(count)]
        self.kills = 0
        for worker in self.workers:
            processes.wait_ready(worker)

    def _start(self) -> processes.ManagedProcess:
        self.generation += 1
        return processes.start_worker(
            f"soak-{self.generation}",
            env=self.env,
            log_dir=self.log_dir,
            queues=("calls", "maintenance"),
            ready_timeout=None,
        )

    def kill_one(self, rng: random.Random) -> None:
        victim = self.workers.pop(rng.randrange(len(self.workers)))
        # Mid-task, what an OOM kill or a lost host does: its unacknowledged messages wait for
        # the visibility timeout.
        victim.kill()
        victim.stop()
        self.kills += 1
        self.workers.append(self._start())

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _poison() -> dict[str, Any]:
    """The poison message's payload: valid but for an event nested 600 levels deep."""
    recorder = simulate_call(
        random.Random(600),
        start=datetime.now(UTC) - timedelta(minutes=5),
        shape=CallShape(4, 6),
        announce=False,
        journal=False,
    )
    recorder.update_status("ended")
    body: dict[str, Any] = recorder.build_payload()
    body["events"].append(
        {
            "sequence": len(body["events"]) + 1,
            "timestamp": body["started_at"],
            "event_type": "tool_response",
            "event_data": nested(600),
        }
    )
    return body


class KeepingPublisher(Publisher):
    """The recorders' publisher, keeping the last payload it was given per call: a duplicate
    delivery is then the very payload the recorder handed off, revision and all."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.last: dict[str, dict[str, Any]] = {}

    def send(self, task_name: str, *, args: list[Any], **options: Any) -> str:
        if task_name == TASK_NAME and args and isinstance(args[0], dict):
            self.last[str(args[0].get("call_id"))] = args[0]
        return super().send(task_name, args=args, **options)


async def _drive(
    config: SoakConfig,
    settings: Settings,
    bench: BenchStack,
    supervisor: Supervisor,
    result: SoakResult,
    poison: dict[str, Any],
    crashes: list[soak_crashes.Crash],
) -> tuple[dict[uuid.UUID, dict[str, Any]], dict[uuid.UUID, float], list[dict[str, Any]]]:
    rng = random.Random(config.seed)
    # Every simulated call ends in the past of the workers' clock, however long the run.
    start = datetime.now(UTC) - timedelta(hours=1, seconds=config.calls)
    burst = range(
        int(config.concurrent_duplicates_at * config.calls),
        int(config.concurrent_duplicates_at * config.calls) + config.concurrent_duplicates,
    )
    valid: dict[uuid.UUID, dict[str, Any]] = {}
    handed: dict[uuid.UUID, float] = {}
    malformed: list[dict[str, Any]] = []
    publisher = Publisher(settings)
    keeping = KeepingPublisher(settings)
    semaphore = asyncio.Semaphore(config.concurrency)
    progress = {"done": 0}
    stop = threading.Event()

    began = time.monotonic()

    async def one(index: int) -> None:
        delay = began + index / config.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with semaphore:
            # A payload the soak publishes itself (a malformed one, a burst's two first
            # deliveries) stands for another producer's: no recorder journal brings its call
            # back once dropped. Recovered, such a journal is a second producer of the call,
            # whose revision may be the one the soak published (a revision conflict).
            malformed_call = rng.random() < config.malformed_ratio
            recorder = simulate_call(
                random.Random(rng.getrandbits(48)),
                start=start + timedelta(seconds=index),
                shape=config.shape,
                settings=settings,
                publisher=keeping,
                journal=not (malformed_call or index in burst),
            )
            recorder.update_status("ended")
            body = recorder.build_payload()
            if malformed_call:
                bad = _malform(body, rng)
                malformed.append(bad)
                await asyncio.to_thread(_send_or_spool, publisher, settings, bad)
            elif index in burst:
                # Two first deliveries at the same moment: two workers race for the insert.
                valid[recorder.call_id] = body
                handed[recorder.call_id] = time.time()
                result.concurrent_duplicates_sent += 1
                await asyncio.to_thread(_send_twice, publisher, settings, body)
            else:
                valid[recorder.call_id] = body
                handed[recorder.call_id] = time.time()
                if not await recorder.finalize_and_write(status="ended"):
                    result.refused_by_recorder += 1
                elif recorder.delivery == "spooled":
                    result.spooled_by_recorder += 1
                if rng.random() < config.duplicate_ratio:
                    result.duplicates_sent += 1
                    sent = keeping.last.get(str(recorder.call_id), body)  # the very same payload
                    await asyncio.to_thread(_send_or_spool, publisher, settings, sent)
            progress["done"] += 1

    async def faults() -> None:
        schedule = sorted(
            [
                (config.postgres_restart_at, "postgres restart"),
                (config.read_only_at, "postgres read-only"),
                (config.maintenance_at, "maintenance run"),
                (config.poison_at, "poison message"),
                (config.redis_restart_at, "redis restart"),
            ]
        )
        if config.kill_every_seconds >= 1e8:
            schedule.append((0.15, "worker SIGKILL"))
            schedule.sort()
        for at, name in schedule:
            while progress["done"] < at * config.calls and not stop.is_set():
                await asyncio.sleep(0.05)
            record = FaultRecord(name, time.time())
            await asyncio.to_thread(_inject, name, bench, supervisor, settings, rng, config, poison)
            record.ended = time.time()
            result.faults.append(record)

    async def killer() -> None:
        while not stop.is_set() and config.kill_every_seconds < 1e8:
            await asyncio.sleep(config.kill_every_seconds)
            if not stop.is_set():
                await asyncio.to_thread(supervisor.kill_one, rng)

    async def runtime_crashes() -> None:
        runtimes = round(config.calls * config.crash_ratio / config.calls_per_crashed_runtime)
        crash_rng = random.Random(config.seed + 1)
        for n in range(runtimes):
            while progress["done"] < (n + 0.5) / runtimes * config.calls and not stop.is_set():
                await asyncio.sleep(0.05)
            crashes.append(
                await asyncio.to_thread(
                    soak_crashes.crash_one,
                    crash_settings,
                    log_dir,
                    f"runtime-{n + 1}",
                    calls=config.calls_per_crashed_runtime,
                    rng=crash_rng,
                )
            )

    crash_settings = settings.model_copy(
        update={"journal_flush_seconds": config.journal_flush_seconds}
    )
    log_dir = bench.paths.data_dir / "logs"
    fault_task = asyncio.create_task(faults())
    killer_task = asyncio.create_task(killer())
    crash_task = asyncio.create_task(runtime_crashes())
    await asyncio.gather(*(one(i) for i in range(config.calls)))
    await fault_task
    await crash_task
    stop.set()
    killer_task.cancel()
    publisher.close()
    keeping.close()
    return valid, handed, malformed


def _send_or_spool(publisher: Publisher, settings: Settings, body: dict[str, Any]) -> None:
    """Deliver an extra copy (a duplicate or a malformed payload) the way a runtime would."""
    from worker.errors import BrokerUnavailable

    try:
        publisher.send(TASK_NAME, args=[body], queue=QUEUE)
    except BrokerUnavailable as error:
        Spool(settings.spool_dir).put(
            TASK_NAME, QUEUE, [body], reason=str(error), key=str(body.get("call_id", "x"))
        )


def _send_twice(publisher: Publisher, settings: Settings, body: dict[str, Any]) -> None:
    for _ in range(2):
        _send_or_spool(publisher, settings, body)


def _read_only(bench: BenchStack, on: bool) -> None:
    """What a standby looks like after a failover: every new transaction is read-only; the
    sessions open now are ended, so the workers' next ones see it."""
    with psycopg.connect(bench.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = {}").format(
                sql.Identifier(SOAK_DATABASE), sql.SQL("on" if on else "off")
            )
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (SOAK_DATABASE,),
        )


def _inject(
    name: str,
    bench: BenchStack,
    supervisor: Supervisor,
    settings: Settings,
    rng: random.Random,
    config: SoakConfig,
    poison: dict[str, Any],
) -> None:
    if name == "postgres restart":
        stack.restart_postgres(bench.paths)
    elif name == "postgres read-only":
        _read_only(bench, True)
        try:
            time.sleep(config.read_only_seconds)  # the outage itself
        finally:
            _read_only(bench, False)
    elif name == "poison message":
        publish_raw(settings, task_body([poison]))
    elif name == "redis restart":
        stack.stop_redis(bench.paths)
        time.sleep(1.0)  # a real outage: recorders spool while Redis is gone
        stack.start_redis(bench.paths)
    elif name == "worker SIGKILL":
        supervisor.kill_one(rng)
    elif name == "maintenance run":
        publisher = Publisher(settings)
        try:
            for task in ("maintenance.rotate_partitions", "maintenance.enforce_retention"):
                publisher.send(task, args=[], queue="maintenance")
        finally:
            publisher.close()


SOAK_DATABASE = "soak"


def _check(
    url: str, valid: dict[uuid.UUID, dict[str, Any]], malformed: list[dict[str, Any]]
) -> tuple[dict[uuid.UUID, tuple[int, int, int]], set[str]]:
    ids = list(valid)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT c.call_id,
                      (SELECT count(*) FROM call_messages m WHERE m.call_id = c.call_id),
                      (SELECT count(*) FROM call_metrics m WHERE m.call_id = c.call_id),
                      (SELECT count(*) FROM call_transcripts t WHERE t.call_id = c.call_id)
                 FROM calls c WHERE c.call_id = ANY(%s)""",
            (ids,),
        ).fetchall()
        dead = conn.execute("SELECT call_id, payload FROM failed_payloads").fetchall()
    found = {r[0]: (r[1], r[2], r[3]) for r in rows}
    dead_ids = {str(r[0]) for r in dead if r[0] is not None}
    dead_ids |= {json.loads(r[1]).get("call_id", "") for r in dead if r[0] is None}
    return found, dead_ids


def _stored_count(url: str, call_ids: set[str]) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM calls WHERE call_id = ANY(%s)", (list(call_ids),)
        ).fetchone()
    return int(row[0]) if row else 0


def run(config: SoakConfig, *, log: Any = print) -> SoakResult:
    started = time.time()
    with bench_stack() as bench:
        url = bench.database(SOAK_DATABASE)
        settings = bench.settings(
            url,
            broker_visibility_timeout=config.visibility_timeout,
            finalize_retry_backoff_max=5,
            publish_timeout_seconds=1.0,
            # A message lost in the broker's window comes back from the outbox within the run.
            outbox_redeliver_seconds=2.0 * config.visibility_timeout,
        )
        log_dir = bench.paths.data_dir / "logs"
        poison = _poison()
        supervisor = Supervisor(settings, config.workers, log_dir)
        malformed_count = 0
        result = SoakResult(calls=config.calls, valid=0, malformed=0, duplicates_sent=0)
        crashes: list[soak_crashes.Crash] = []
        try:
            log(f"soak: {config.calls} calls, {config.workers} workers")
            valid, handed, malformed = asyncio.run(
                _drive(config, settings, bench, supervisor, result, poison, crashes)
            )
            malformed_count = len(malformed)
            log("soak: all calls handed off; recovering journals, flushing the spool, settling")
            flush_publisher = Publisher(settings)
            drain(settings, send=publisher_send(flush_publisher))  # as `callstore spool flush`
            flush_publisher.close()
            crashed = {c for crash in crashes for c in crash.recorded.call_ids}
            deadline = time.monotonic() + config.settle_timeout
            while True:
                found, dead_ids = _check(url, valid, malformed)
                settled = (
                    len(found) == len(valid)
                    and poison["call_id"] in dead_ids
                    and all(
                        str(b.get("call_id", "")) in dead_ids or "call_id" not in b
                        for b in malformed
                    )
                    and _stored_count(url, crashed) == len(crashed)
                )
                if settled or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            kills = supervisor.kills
        finally:
            supervisor.stop()
        crash_check = soak_crashes.check(
            url, crashes, flush_seconds=config.journal_flush_seconds, log=log
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conflicts = conn.execute("SELECT count(*) FROM call_conflicts").fetchone()
            result.revision_conflicts = int(conflicts[0]) if conflicts else 0
            persisted_at: dict[uuid.UUID, float] = {
                row[0]: float(row[1])
                for row in conn.execute(
                    "SELECT call_id, extract(epoch FROM persisted_at) FROM calls"
                ).fetchall()
            }

    result.valid = len(valid)
    result.malformed = malformed_count
    result.worker_kills = kills
    result.runtime_kills = len(crashes)
    result.crashed_calls = crash_check.calls
    result.interrupted_recovered = crash_check.recovered
    result.interrupted_wrong = crash_check.wrong
    result.crashed_entries_recorded = crash_check.entries_recorded
    result.crashed_entries_stored = crash_check.entries_stored
    result.lost += crash_check.lost
    result.persisted = len(found)
    for call_id, body in valid.items():
        counts = found.get(call_id)
        if counts is None:
            if str(call_id) in dead_ids:
                result.wrongly_dead_lettered += 1
            else:
                result.lost += 1
        elif counts != (len(body["messages"]), len(body["metrics"]), min(1, len(body["messages"]))):
            result.duplicated += 1
    result.poison_dead_lettered = poison["call_id"] in dead_ids
    result.dead_lettered = len(dead_ids - {poison["call_id"]})
    latencies = [(float(persisted_at[c]) - handed[c]) * 1000 for c in handed if c in persisted_at]
    if latencies:
        result.e2e_p50_ms = percentile(latencies, 50)
        result.e2e_p99_ms = percentile(latencies, 99)
    stamps = sorted(persisted_at.values())
    for fault in result.faults:
        after = [s for s in stamps if s > fault.ended]
        fault.recovered_after_s = (after[0] - fault.started) if after else None
    result.duration_s = time.time() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=SoakConfig.rate, help="calls handed off per second"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--short", action="store_true", help="the test suite's one-minute run")
    args = parser.parse_args(argv)
    config = (
        SoakConfig.short()
        if args.short
        else SoakConfig(calls=args.calls, workers=args.workers, rate=args.rate)
    )
    result = run(config)
    figures = result.as_dict()
    print(json.dumps(figures, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    clean = (
        result.lost == 0
        and result.duplicated == 0
        and result.interrupted_wrong == 0
        and result.poison_dead_lettered
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
