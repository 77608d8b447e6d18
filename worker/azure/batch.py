"""Migration batches: read the next pages, transform them, write them with their checkpoint.

The plain functions behind ``migration.run_batch`` and ``callstore migrate azure run``. A batch:

1. picks the sources this round still has to read (foreign-key order, see ``checkpoints``);
2. reads pages from each, from its continuation token, until the batch size is reached or a
   source's pass is not finished (later sources wait for it);
3. transforms every record (pure; a record beyond repair becomes a reject);
4. makes the monthly partitions the rows need, in a short transaction of its own;
5. in ONE transaction: writes the rows in foreign-key order, keeps the rejects, brings migrated
   calls' summaries up to date, and saves the checkpoints.

A batch killed anywhere before step 5 commits leaves the store and the checkpoints as they
were, so the next batch reads the same pages again; every write is idempotent besides, so a
record is never stored twice.

A run of several batches holds the job lock (``worker.jobs.exclusive_job``) throughout, so
only one run migrates at a time, and reads batch N+1 in a background thread while batch N is
written: steps 1-3 need only the checkpoints as batch N will leave them, which are known once
batch N is read. At most three batches are in memory (one written, one queued, one read).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine

from worker.azure import checkpoints, sources
from worker.azure.checkpoints import Checkpoint
from worker.azure.client import AzureStorage, RetryOptions, storage_from_settings
from worker.azure.readers import Page, Record, read_pages
from worker.azure.sources import Source
from worker.azure.transforms import (
    CallRow,
    EntryRow,
    Reject,
    Row,
    Transformed,
    raw_text,
    transform_page,
)
from worker.azure.writer import Problem, WriteOutcome, Writer
from worker.db import classify, get_engine, raw_connection, session_scope
from worker.errors import ConstraintViolation, PartitionMissing
from worker.jobs import JobName, Progress, exclusive_job
from worker.log import get_logger
from worker.maintenance.partition_cache import partition_guard
from worker.maintenance.partitions import month_start
from worker.readahead import read_ahead
from worker.settings import Settings

log = get_logger("callstore.migration")

#: A batch stops reading after this many seconds, whatever its size.
DEFAULT_READ_BUDGET = 60.0

#: Seconds between GIL hand-offs while a reader thread runs ahead (see ``_planned``).
SWITCH_INTERVAL = 0.0005


@dataclass(frozen=True, slots=True)
class Options:
    batch_size: int
    overlap: timedelta
    read_budget: float = DEFAULT_READ_BUDGET


def options(
    settings: Settings, *, batch_size: int | None = None, overlap: timedelta | None = None
) -> Options:
    """Batch options from ``settings``, overridden by the arguments given."""
    return Options(
        batch_size=batch_size or settings.migration_batch_size,
        overlap=timedelta(seconds=settings.migration_overlap_seconds)
        if overlap is None
        else overlap,
    )


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """What a batch did to one source."""

    source: str
    scanned: int
    migrated: int
    rejected: int
    pass_complete: bool
    #: Calls migrated with a field kept as well as it could be (``metadata.legacy_oddities``).
    oddities: int = 0


@dataclass(frozen=True, slots=True)
class BatchResult:
    sources: tuple[SourceBatch, ...] = ()
    round_complete: bool = False
    caught_up: bool = False
    synthesized_calls: int = 0
    partitions_created: int = 0
    duration_s: float = 0.0

    @property
    def scanned(self) -> int:
        return sum(s.scanned for s in self.sources)

    @property
    def migrated(self) -> int:
        return sum(s.migrated for s in self.sources)

    @property
    def rejected(self) -> int:
        return sum(s.rejected for s in self.sources)

    @property
    def oddities(self) -> int:
        return sum(s.oddities for s in self.sources)


@dataclass(frozen=True, slots=True)
class RunResult:
    """A run of batches; ``skipped`` when another run held the job lock."""

    skipped: bool = False
    batches: tuple[BatchResult, ...] = ()

    @property
    def caught_up(self) -> bool:
        return bool(self.batches) and self.batches[-1].caught_up

    def total(self, name: str) -> int:
        return sum(int(getattr(b, name)) for b in self.batches)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form: the task's result and ``job_runs.last_details``."""
        per_source: dict[str, dict[str, int]] = {}
        for batch in self.batches:
            for s in batch.sources:
                counts = per_source.setdefault(
                    s.source, {"scanned": 0, "migrated": 0, "rejected": 0, "oddities": 0}
                )
                counts["scanned"] += s.scanned
                counts["migrated"] += s.migrated
                counts["rejected"] += s.rejected
                counts["oddities"] += s.oddities
        return {
            "skipped": self.skipped,
            "batches": len(self.batches),
            "scanned": self.total("scanned"),
            "migrated": self.total("migrated"),
            "rejected": self.total("rejected"),
            "oddities": self.total("oddities"),
            "synthesized_calls": self.total("synthesized_calls"),
            "partitions_created": self.total("partitions_created"),
            "caught_up": self.caught_up,
            "duration_s": round(sum(b.duration_s for b in self.batches), 3),
            "sources": per_source,
        }


@contextmanager
def _storage(
    settings: Settings, storage: AzureStorage | None, retry: RetryOptions | None
) -> Iterator[AzureStorage]:
    if storage is not None:
        yield storage
        return
    with storage_from_settings(settings, retry) as own:
        yield own


def run_batches(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    batch_size: int | None = None,
    overlap: timedelta | None = None,
    max_batches: int | None = None,
    deadline_s: float | None = None,
    storage: AzureStorage | None = None,
    retry: RetryOptions | None = None,
    engine: Engine | None = None,
    on_batch: Callable[[BatchResult], None] | None = None,
    progress: Progress | None = None,
    log_batches: bool = True,
) -> RunResult:
    """Batches until every source is caught up (a whole round changed nothing), or
    ``max_batches`` ran, or ``deadline_s`` seconds passed; under the job lock throughout.

    ``clock`` gives the time recorded as each batch's ``last_batch_at``. ``on_batch`` and
    ``progress`` are called after each batch (the CLI's progress bar, the task's state).
    """
    opts = options(settings, batch_size=batch_size, overlap=overlap)
    started = time.monotonic()
    results: list[BatchResult] = []
    with exclusive_job(settings, JobName.MIGRATION) as job:
        if job is None:
            return RunResult(skipped=True)
        engine = engine or get_engine()
        with _storage(settings, storage, retry) as azure:
            with session_scope(engine) as session:
                state = checkpoints.load(raw_connection(session))
            prefetch = max_batches is None or max_batches > 1
            with _planned(azure, copy.deepcopy(state), opts, prefetch=prefetch) as planned:
                mark = time.monotonic()
                for work in planned:
                    result = _write_batch(engine, state, work, opts, now=clock(), since=mark)
                    del work  # memory: at most the batch read ahead and the one being read
                    if log_batches:
                        _log(result)
                    mark = time.monotonic()
                    results.append(result)
                    _report(results, on_batch, progress)
                    if result.caught_up or (max_batches and len(results) >= max_batches):
                        break
                    if deadline_s is not None and mark - started >= deadline_s:
                        break
        run = RunResult(batches=tuple(results))
        job.details.update(run.as_dict())
        job.details.pop("sources", None)
    return run


def run_batch(settings: Settings, *, now: datetime, **kwargs: Any) -> RunResult:
    """Exactly one batch (``run_batches`` with ``max_batches=1``)."""
    return run_batches(settings, clock=lambda: now, max_batches=1, **kwargs)


def _report(
    results: Sequence[BatchResult],
    on_batch: Callable[[BatchResult], None] | None,
    progress: Progress | None,
) -> None:
    last = results[-1]
    if on_batch is not None:
        on_batch(last)
    if progress is not None:
        progress(
            batches=len(results),
            scanned=sum(r.scanned for r in results),
            migrated=sum(r.migrated for r in results),
            rejected=sum(r.rejected for r in results),
            oddities=sum(r.oddities for r in results),
            caught_up=last.caught_up,
        )


# -- reading -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Work:
    """One source's share of a batch, read and transformed."""

    source: Source
    started_pass: bool
    pages: list[Page] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    transformed: Transformed = field(default_factory=Transformed)

    @property
    def pass_complete(self) -> bool:
        return bool(self.pages) and self.pages[-1].complete


def plan_batch(storage: AzureStorage, state: dict[str, Checkpoint], opts: Options) -> list[_Work]:
    """Read and transform the next batch, moving ``state`` (a private copy of the checkpoints)
    past it exactly as writing the batch will move the real ones."""
    started = time.monotonic()
    budget = opts.batch_size
    work: list[_Work] = []
    for source in checkpoints.due(state):
        checkpoint = state[source.name]
        started_pass = not checkpoint.pass_open
        if started_pass:
            checkpoint.start_pass(opts.overlap)
        item = _Work(source, started_pass)
        work.append(item)
        for page in read_pages(
            storage,
            source,
            since=checkpoint.pass_from,
            continuation=checkpoint.continuation,
            limit=budget,
        ):
            item.pages.append(page)
            item.records.extend(page.records)
            budget -= max(page.listed, 1)
            if time.monotonic() - started > opts.read_budget:
                break
        for page in item.pages:
            checkpoint.advance(page)
        if item.pass_complete:
            checkpoint.complete_pass()
        item.transformed = transform_page(source.name, item.records)
        if not item.pass_complete or budget <= 0:
            break
        if time.monotonic() - started > opts.read_budget:
            break
    return work


@contextmanager
def _planned(
    storage: AzureStorage, state: dict[str, Checkpoint], opts: Options, *, prefetch: bool
) -> Iterator[Iterator[list[_Work]]]:
    """Batches as they are planned: in this thread, or one ahead in a reader thread."""
    batches: Iterator[list[_Work]] = iter(lambda: plan_batch(storage, state, opts), None)
    if not prefetch:
        yield batches
        return
    # The reader is busy in Python (the SDK parses every entity) while the writer mostly waits
    # on PostgreSQL; with the default 5 ms switch interval the writer waits up to that long for
    # the GIL after every statement. A shorter interval measured ~20 % faster batches.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        with read_ahead(batches, depth=1, name="azure-migration-reader") as planned:
            yield planned
    finally:
        sys.setswitchinterval(interval)


# -- writing -----------------------------------------------------------------------------------


def _write_batch(
    engine: Engine,
    state: dict[str, Checkpoint],
    work: Sequence[_Work],
    opts: Options,
    *,
    now: datetime,
    since: float,
) -> BatchResult:
    months = _message_months(work)
    created = partition_guard.ensure(engine, months)
    careful = made_months = False
    while True:
        try:
            draft, summaries, synthesized = _write_transaction(
                engine, state, work, opts, now, since, careful=careful
            )
            break
        except PartitionMissing:
            # A month was dropped (retention) or made elsewhere since this process last looked.
            if made_months:
                raise
            made_months = True
            partition_guard.forget()
            created += partition_guard.ensure(engine, months)
        except ConstraintViolation as error:
            # PostgreSQL refused a value no transform foresaw: write the batch again, each
            # source in a savepoint and, where refused, record by record, so only the refused
            # records become rejects.
            if careful:
                raise
            careful = True
            log.warning(
                "batch refused, writing it again record by record",
                action="migration_careful",
                error=str(error),
            )
    state.update(draft)
    elapsed = time.monotonic() - since
    return BatchResult(
        sources=tuple(summaries),
        round_complete=len({c.passes for c in state.values()}) == 1,
        caught_up=checkpoints.caught_up(state),
        synthesized_calls=synthesized,
        partitions_created=len(created),
        duration_s=elapsed,
    )


def _log(result: BatchResult) -> None:
    log.info(
        "migration batch",
        action="migration_batch",
        scanned=result.scanned,
        migrated=result.migrated,
        rejected=result.rejected,
        oddities=result.oddities,
        synthesized_calls=result.synthesized_calls,
        partitions_created=result.partitions_created,
        round_complete=result.round_complete,
        caught_up=result.caught_up,
        duration_ms=round(result.duration_s * 1000, 1),
    )


def _write_transaction(
    engine: Engine,
    state: dict[str, Checkpoint],
    work: Sequence[_Work],
    opts: Options,
    now: datetime,
    since: float,
    *,
    careful: bool,
) -> tuple[dict[str, Checkpoint], list[SourceBatch], int]:
    """Write ``work`` and its checkpoints in one transaction. The checkpoints are moved on a
    draft, which the caller keeps only once the transaction committed."""
    draft = {item.source.name: copy.copy(state[item.source.name]) for item in work}
    synthesized = 0
    summaries: list[SourceBatch] = []
    with session_scope(engine) as session:
        conn = raw_connection(session)
        # The batch's statements are the same every time: plan them once per connection. They
        # look rows up by call id, and during a migration the monthly partitions they probe are
        # new and filled faster than autovacuum analyzes them: without statistics the planner
        # would scan each partition whole instead of probing its index.
        conn.execute(
            "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off"
        )
        writer = Writer(conn)
        for item in work:
            rows = item.transformed.rows
            if careful:
                written = _write_carefully(writer, item.source, rows)
            else:
                written = _WRITERS[item.source.name](writer, rows) if rows else WriteOutcome()
            synthesized += written.synthesized_calls
            rejected = _keep_rejects(writer, item, written.problems)
            if item.source is sources.CALL_TRANSCRIPTS:
                writer.finish_calls(written.calls)
            checkpoint = draft[item.source.name]
            if item.started_pass:
                checkpoint.start_pass(opts.overlap)
            for page in item.pages:
                checkpoint.advance(page)
            checkpoint.count(migrated=written.migrated, rejected=rejected)
            if item.pass_complete:
                checkpoint.complete_pass()
            checkpoint.last_batch_at = now
            summaries.append(
                SourceBatch(
                    item.source.name,
                    len(item.records),
                    written.migrated,
                    rejected,
                    item.pass_complete,
                    _oddities(rows, written),
                )
            )
        _share_time(draft, work, time.monotonic() - since)
        checkpoints.save(conn, draft.values())
    return draft, summaries, synthesized


def _oddities(rows: Sequence[Row], written: WriteOutcome) -> int:
    """Calls this batch migrated (changed) that keep a field with an oddity."""
    return sum(
        1 for r in rows if isinstance(r, CallRow) and r.oddities and r.key in written.changed
    )


def _message_months(work: Sequence[_Work]) -> set[date]:
    return {
        month_start(row.timestamp)
        for item in work
        for row in item.transformed.rows
        if isinstance(row, EntryRow) and row.kind == "message"
    }


_WRITERS: dict[str, Callable[[Writer, Any], WriteOutcome]] = {
    sources.BEHAVIORAL_CONFIGS.name: Writer.tactics,
    sources.PROMPTS.name: Writer.prompts,
    sources.CUSTOMERS.name: Writer.customers,
    sources.ORGANIZATIONS.name: Writer.organizations,
    sources.CALL_HISTORY.name: Writer.calls,
    sources.CALL_TRANSCRIPTS.name: Writer.entries,
}


def _write_carefully(writer: Writer, source: Source, rows: Sequence[Row]) -> WriteOutcome:
    """Write ``rows`` in a savepoint; if PostgreSQL refuses the lot, write them one by one,
    each in a savepoint, and turn the ones it refuses into problems (rejects)."""
    if not rows:
        return WriteOutcome()
    method = _WRITERS[source.name]
    try:
        with _savepoint(writer.conn):
            return method(writer, rows)
    except psycopg.Error as error:
        translated = classify(error)
        if not isinstance(translated, ConstraintViolation):
            raise
        if len(rows) == 1:
            return WriteOutcome(
                problems=[Problem(rows[0].key, f"PostgreSQL refused it: {translated}")]
            )
    merged = WriteOutcome()
    for row in rows:
        one = _write_carefully(writer, source, [row])
        merged.changed |= one.changed
        merged.problems += one.problems
        merged.calls |= one.calls
        merged.added += one.added
        merged.synthesized_calls += one.synthesized_calls
    return merged


@contextmanager
def _savepoint(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A savepoint in the batch's transaction. (psycopg's ``conn.transaction()`` would commit
    on exit if it found no transaction open yet; the batch's transaction belongs to
    ``session_scope``.)"""
    conn.execute("SAVEPOINT azure_write")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO SAVEPOINT azure_write")
        conn.execute("RELEASE SAVEPOINT azure_write")
        raise
    conn.execute("RELEASE SAVEPOINT azure_write")


def _keep_rejects(writer: Writer, item: _Work, problems: Sequence[Problem]) -> int:
    """Store this source's rejects; resolve those of records that migrated now. Returns how
    many rejects are new or changed."""
    by_key = {record.key: record for record in item.records}
    rejects = list(item.transformed.rejects)
    for problem in problems:
        record = by_key[problem.record_key]
        rejects.append(
            Reject(
                item.source.name,
                problem.record_key + problem.suffix,
                raw_text(record),
                problem.reason,
                record.timestamp,
            )
        )
    failed = {r.key for r in item.transformed.rejects}
    failed |= {p.record_key for p in problems if not p.suffix}
    changed = writer.rejects(rejects) if rejects else set()
    writer.resolve(
        item.source.name,
        [r.key for r in item.records if r.key not in failed],
        parts=item.source is sources.ORGANIZATIONS,
        keep=[p.record_key + p.suffix for p in problems if p.suffix],
    )
    return len(changed)


def _share_time(state: dict[str, Checkpoint], work: Sequence[_Work], elapsed: float) -> None:
    """Attribute a batch's time to its sources by the records each contributed."""
    total = sum(len(item.records) for item in work)
    for item in work:
        share = len(item.records) / total if total else 1 / max(len(work), 1)
        state[item.source.name].busy_seconds += elapsed * share
