"""How fast a call is persisted, against the raw ceiling and the naive ORM path.

All paths write the same simulated calls into the same freshly truncated tables:

* **real path** — ``worker.calls.persist.persist_call`` per call, one transaction per call (what a
  worker does): binary COPY for the big tables, one pipeline of prepared INSERTs for the small;
* alternatives for the children, same transaction shape: multi-row ``INSERT ... VALUES`` and
  ``executemany`` (psycopg pipelines it), to show why COPY was chosen;
* **batched** — several calls per transaction (what a batching consumer could reach);
* **raw ceiling** — one COPY per table of every call's rows in ONE transaction, no per-call
  work at all: in binary, the format the real path writes (the ceiling the targets are
  measured against), and in COPY's default text format beside it; the transcripts of all
  calls are then built by one statement;
* **naive ORM** — a SQLModel object per row, ``session.add`` and a commit per call.

Every path builds the transcripts with the statement the live path runs
(``worker.calls.transcripts``), so all write the same rows, of the standard simulated call
(``CallShape()``, the shape the end-to-end runs draw theirs from).

A run of ``python -m bench`` measures the paths the targets read (``TARGET_PATHS``) in every
repetition and the others once; ``python -m bench.persist [--quick] [--json FILE]`` runs this
section alone, its figures the medians of three repetitions (one with ``--quick``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from sqlmodel import Session, create_engine

from bench.common import bench_stack, section_main, timed, truncate
from bench.spread import median_merge
from models.payload import CallPayload
from models.tables import (
    Call,
    CallAnalysis,
    CallEvent,
    CallExtractedVariables,
    CallMessage,
    CallMetric,
    CallRagChunk,
    CallRagRetrieval,
    CallToolExecution,
    CallTransition,
    CallUserInterruption,
)
from worker.calls import transcripts
from worker.calls.child_tables import ROW_TABLES
from worker.calls.persist import (
    CallRows,
    build_rows,
    copy_children,
    copy_sql,
    insert_sql,
    persist_call,
    write_call,
)
from worker.dev.simulate import simulate_call

ORM_CLASSES: dict[str, Any] = {
    "call_messages": CallMessage,
    "call_transitions": CallTransition,
    "call_metrics": CallMetric,
    "call_rag_retrievals": CallRagRetrieval,
    "call_rag_chunks": CallRagChunk,
    "call_extracted_variables": CallExtractedVariables,
    "call_user_interruptions": CallUserInterruption,
    "call_tool_executions": CallToolExecution,
    "call_events": CallEvent,
    "call_analysis": CallAnalysis,
}
_TABLES = {t.name: t for t in ROW_TABLES}

REAL_PATH = "real path (1 call/txn)"
BATCHED = "batched, 10 calls/txn"
TEXT_CEILING = "raw ceiling, text COPY (one txn)"
#: The one-transaction binary COPY of every call's rows: the ceiling the targets are against.
CEILING = "raw ceiling, binary COPY (one txn)"
ORM_PATH = "naive SQLModel ORM (1 call/txn)"
#: What the targets read: measured in every repetition of a run, the other paths once.
TARGET_PATHS = (REAL_PATH, CEILING, ORM_PATH)


def make_payloads(count: int, *, seed: int = 7) -> list[CallPayload]:
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(day=2, hour=9, minute=0, second=0, microsecond=0)
    payloads = []
    for _ in range(count):
        recorder = simulate_call(
            random.Random(rng.getrandbits(48)),
            start=start + timedelta(minutes=rng.randint(0, 600)),
            announce=False,
            journal=False,
        )
        recorder.update_status("ended")
        payloads.append(CallPayload.model_validate(recorder.build_payload()))
    return payloads


def row_count(rows: Sequence[CallRows]) -> int:
    """Rows stored, the transcript included (one per call that has messages)."""
    return sum(
        1 + sum(len(r) for r in call.children.values()) + bool(call.children["call_messages"])
        for call in rows
    )


def _values_writer(cursor: psycopg.Cursor[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    columns = _TABLES[table].column_names
    per_statement = max(1, 60_000 // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        row_sql = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(columns)))
        statement = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join([row_sql] * len(chunk)),
        )
        cursor.execute(statement, [value for row in chunk for value in row])


def _executemany_writer(
    cursor: psycopg.Cursor[Any], table: str, rows: list[tuple[Any, ...]]
) -> None:
    cursor.executemany(insert_sql(_TABLES[table]), rows)


def _per_call(url: str, payloads: list[CallPayload], writer: Any = None) -> float:
    truncate(url)
    with psycopg.connect(url) as conn:

        def work() -> None:
            for payload in payloads:
                with conn.transaction():
                    if writer is None:
                        persist_call(conn, payload)
                    else:
                        write_call(conn, build_rows(payload), write_children=writer)

        _, seconds = timed(work)
    return seconds


def _batched(url: str, payloads: list[CallPayload], batch: int) -> float:
    truncate(url)
    with psycopg.connect(url) as conn:

        def work() -> None:
            for start in range(0, len(payloads), batch):
                with conn.transaction():
                    for payload in payloads[start : start + batch]:
                        persist_call(conn, payload)

        _, seconds = timed(work)
    return seconds


def _text_copy(cursor: psycopg.Cursor[Any], table: str, rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(copy_sql(_TABLES[table], binary=False)) as copy:
        for row in rows:
            copy.write_row(row)


def _ceiling(url: str, rows: list[CallRows], *, binary: bool) -> float:
    truncate(url)
    write = copy_children if binary else _text_copy
    call_columns = tuple(rows[0].call)
    with psycopg.connect(url) as conn:

        def work() -> None:
            with conn.transaction(), conn.cursor() as cursor:
                copy_calls = sql.SQL("COPY calls ({}) FROM STDIN").format(
                    sql.SQL(", ").join(map(sql.Identifier, call_columns))
                )
                with cursor.copy(copy_calls) as copy:
                    for call in rows:
                        copy.write_row(tuple(call.call.values()))
                for table in _TABLES:
                    write(cursor, table, [r for call in rows for r in call.children[table]])
                cursor.execute(
                    transcripts.REBUILD_SQL, {"call_ids": [call.call["call_id"] for call in rows]}
                )

        _, seconds = timed(work)
    return seconds


def _orm(sqlalchemy_url: str, url: str, rows: list[CallRows]) -> float:
    truncate(url)
    engine = create_engine(sqlalchemy_url)

    def objects(call: CallRows) -> list[Any]:
        made: list[Any] = [Call(**call.call)]
        for table, table_rows in call.children.items():
            cls = ORM_CLASSES[table]
            for row in table_rows:
                values = dict(zip(_TABLES[table].column_names, row, strict=True))
                for key, value in values.items():
                    if hasattr(value, "obj"):  # psycopg Jsonb wrapper → plain value for the ORM
                        values[key] = value.obj
                made.append(cls(**values))
        return made

    def work() -> None:
        with Session(engine) as session:
            for call in rows:
                session.add_all(objects(call))
                session.flush()
                session.connection().exec_driver_sql(
                    transcripts.REBUILD_SQL.decode(), {"call_ids": [call.call["call_id"]]}
                )
                session.commit()

    _, seconds = timed(work)
    engine.dispose()
    return seconds


@dataclass(frozen=True)
class Workload:
    """The calls every path writes, built once per run so that repetitions write the same."""

    payloads: list[CallPayload]
    rows: list[CallRows]
    total_rows: int

    @property
    def calls(self) -> int:
        return len(self.payloads)


def workload(*, quick: bool) -> Workload:
    payloads = make_payloads(40 if quick else 150)
    rows = [build_rows(p) for p in payloads]
    return Workload(payloads, rows, row_count(rows))


def run(
    url: str, sqlalchemy_url: str, work: Workload, *, every_path: bool = True
) -> dict[str, Any]:
    """One repetition: each path measured once (only ``TARGET_PATHS`` unless ``every_path``),
    and the ratios of this repetition's measurements."""
    payloads, rows = work.payloads, work.rows
    measured: dict[str, Callable[[], float]] = {
        REAL_PATH: lambda: _per_call(url, payloads),
        "multi-row INSERT (1 call/txn)": lambda: _per_call(url, payloads, _values_writer),
        "executemany (1 call/txn)": lambda: _per_call(url, payloads, _executemany_writer),
        BATCHED: lambda: _batched(url, payloads, 10),
        TEXT_CEILING: lambda: _ceiling(url, rows, binary=False),
        CEILING: lambda: _ceiling(url, rows, binary=True),
        ORM_PATH: lambda: _orm(sqlalchemy_url, url, rows),
    }
    paths = {}
    for name, measure in measured.items():
        if every_path or name in TARGET_PATHS:
            seconds = measure()
            paths[name] = {
                "calls_per_s": work.calls / seconds,
                "rows_per_s": work.total_rows / seconds,
            }
    return {
        "calls": work.calls,
        "rows": work.total_rows,
        "rows_per_call": work.total_rows / work.calls,
        "paths": paths,
        **ratios(paths),
    }


def ratios(paths: dict[str, dict[str, float]]) -> dict[str, float]:
    """The real path against the ceilings and the ORM (and batching against the ceiling), of
    the paths measured together in ``paths``."""
    real = paths[REAL_PATH]["calls_per_s"]
    ceiling = paths[CEILING]["calls_per_s"]
    found = {
        "persist_vs_copy_ratio": real / ceiling,
        "persist_vs_orm_ratio": real / paths[ORM_PATH]["calls_per_s"],
    }
    if TEXT_CEILING in paths:
        found["persist_vs_text_copy_ratio"] = real / paths[TEXT_CEILING]["calls_per_s"]
    if BATCHED in paths:
        found["batched_vs_copy_ratio"] = paths[BATCHED]["calls_per_s"] / ceiling
    return found


def standalone(*, quick: bool) -> dict[str, Any]:
    """This section alone, on a private PostgreSQL; prints the rates."""
    work = workload(quick=quick)
    with bench_stack(redis=False) as bench:
        url = bench.database("bench")
        orm_url = "postgresql+psycopg://" + url.split("://", 1)[1]
        results = median_merge(
            [run(url, orm_url, work, every_path=n == 0) for n in range(1 if quick else 3)]
        )
    print(f"{results['calls']} calls, {results['rows_per_call']:.0f} rows per call")
    for name, path in results["paths"].items():
        print(
            f"  {name:<36} {path['calls_per_s']:8,.0f} calls/s {path['rows_per_s']:10,.0f} rows/s"
        )
    print(f"real path / binary COPY ceiling: {results['persist_vs_copy_ratio']:.2f}")
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main("python -m bench.persist", __doc__, standalone, argv)


if __name__ == "__main__":
    main()
