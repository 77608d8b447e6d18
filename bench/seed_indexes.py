"""What seed 000's indexes on ``calls`` cost on the write paths, and what they buy on reads.

Seed 000 indexes ``calls.outcome``, ``(customer_id, status)`` and ``(organization_id, status)
WHERE organization_id IS NOT NULL``. ``calls`` is the table the hot finalize path upserts, once
per call, so each index is measured before it is kept. In the same run, on the same fresh
database, with only the indexes changed between runs (best of several alternated runs, these
machines being shared and noisy):

* **runtime calls**: the finalize path's per-call work on ``calls`` (the upsert, the transcript
  statement and the announcement, one transaction per call; no children, so the index cost is
  not lost among 800 child rows). Runtime calls have no customer, organization or outcome;
* **migrated calls**: rows with a customer, an organization and an outcome, 500 per
  transaction (the migration's shape);

for four sets of indexes: none of the three (before revision 0008: the baseline), the seed's as
written (full indexes on ``outcome`` and ``(customer_id, status)``), the partial ones revision
0008 makes (``WHERE ... IS NOT NULL``), and those without the older full index on
``customer_id`` that ``(customer_id, status)`` makes redundant for reads. Two figures each: the
WAL written per call (what every index entry costs, exact and free of the machine's noise) and
the rate (the median of rounds whose order of variants rotates). Then, on a table of calls half
runtime and half migrated, the seed's reads with and without the indexes.

``python -m bench.seed_indexes [--quick] [--json FILE]``.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bench.common import bench_stack, section_main, truncate
from bench.persist import make_payloads
from worker.calls.persist import CallRows, build_rows, write_call

OUTCOMES = ("payment_arranged", "callback_scheduled", "refused", "no_contact")
RARE_OUTCOME = "transfer"  # 1 % of migrated calls

SEED = {
    "ix_calls_outcome": "CREATE INDEX ix_calls_outcome ON calls (outcome)",
    "ix_calls_customer_id_status": (
        "CREATE INDEX ix_calls_customer_id_status ON calls (customer_id, status)"
    ),
    "ix_calls_organization_id_status": (
        "CREATE INDEX ix_calls_organization_id_status ON calls (organization_id, status)"
        " WHERE organization_id IS NOT NULL"
    ),
}
PARTIAL = {
    "ix_calls_outcome": "CREATE INDEX ix_calls_outcome ON calls (outcome)"
    " WHERE outcome IS NOT NULL",
    "ix_calls_customer_id_status": "CREATE INDEX ix_calls_customer_id_status"
    " ON calls (customer_id, status) WHERE customer_id IS NOT NULL",
    "ix_calls_organization_id_status": SEED["ix_calls_organization_id_status"],
}
CUSTOMER_ID = "CREATE INDEX ix_calls_customer_id ON calls (customer_id)"

#: name -> (indexes of revision 0008 to make, whether the full customer_id index exists)
VARIANTS: dict[str, tuple[dict[str, str], bool]] = {
    "none (before 0008)": ({}, True),
    "seed's, as written": (SEED, True),
    "partial (revision 0008)": (PARTIAL, True),
    "partial, no full customer_id": (PARTIAL, False),
}


def _set_indexes(url: str, indexes: dict[str, str], customer_id: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in (*SEED, "ix_calls_customer_id"):
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(name)))
        for statement in indexes.values():
            conn.execute(statement)
        if customer_id:
            conn.execute(CUSTOMER_ID)


def _accounts(url: str, customers: int, organizations: int) -> tuple[list[Any], list[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE customers, organizations CASCADE")
        customer_ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO customers (external_id, phone_number)"
                " SELECT 'bench-' || g, '+1555' || lpad(g::text, 7, '0')"
                " FROM generate_series(1, %s) g RETURNING id",
                (customers,),
            ).fetchall()
        ]
        org_ids = [
            r[0]
            for r in conn.execute(
                "INSERT INTO organizations (external_id, name)"
                " SELECT 'bench-org-' || g, 'Org ' || g FROM generate_series(1, %s) g"
                " RETURNING id",
                (organizations,),
            ).fetchall()
        ]
    return customer_ids, org_ids


def _runtime_rows(count: int) -> list[CallRows]:
    """``count`` runtime calls: one simulated call's ``calls`` row, each with its own id."""
    template = build_rows(make_payloads(1)[0])
    start = template.call["started_at"]
    rows = []
    for n in range(count):
        call = dict(template.call)
        call["call_id"] = uuid.uuid4()
        call["twilio_call_sid"] = "CA" + uuid.uuid4().hex
        call["started_at"] = start + timedelta(seconds=n)
        rows.append(CallRows(call=call, children={t: [] for t in template.children}))
    return rows


def _wal(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    assert row is not None
    return int(row[0])


def _measured(url: str, work: Callable[[psycopg.Connection[Any]], None]) -> tuple[float, int]:
    """Seconds and WAL bytes ``work`` takes on freshly emptied call tables."""
    truncate(url)
    with psycopg.connect(url) as conn:
        wal = _wal(conn)
        conn.commit()
        started = time.perf_counter()
        work(conn)
        elapsed = time.perf_counter() - started
        return elapsed, _wal(conn) - wal


def _runtime_writer(rows: list[CallRows]) -> Callable[[psycopg.Connection[Any]], None]:
    """Writes ``rows`` as the finalize path does, a call per transaction."""

    def write(conn: psycopg.Connection[Any]) -> None:
        for call in rows:
            with conn.transaction():
                write_call(conn, call)

    return write


_MIGRATED = """
INSERT INTO calls (call_id, source, revision, twilio_call_sid, status, started_at,
                   customer_id, organization_id, outcome, metadata)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bigint[], %s::text[], %s::text[],
                     %s::timestamptz[], %s::uuid[], %s::uuid[], %s::text[], %s::jsonb[])
"""


def _migrated_batches(
    count: int, customers: list[Any], orgs: list[Any], rng: random.Random
) -> list[list[tuple[Any, ...]]]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (
            uuid.uuid4(),
            "azure",
            1,
            "CA" + uuid.uuid4().hex,
            rng.choice(("ended", "ended", "ended", "error", "in_progress")),
            start + timedelta(minutes=n),
            rng.choice(customers),
            rng.choice(orgs) if rng.random() < 0.3 else None,
            RARE_OUTCOME if rng.random() < 0.01 else rng.choice((*OUTCOMES, None)),
            Jsonb({"legacy_status": "completed"}),
        )
        for n in range(count)
    ]
    return [rows[i : i + 500] for i in range(0, len(rows), 500)]


def _migrated_writer(
    batches: list[list[tuple[Any, ...]]],
) -> Callable[[psycopg.Connection[Any]], None]:
    """Inserts ``batches``, a transaction each (the migration's shape)."""

    def write(conn: psycopg.Connection[Any]) -> None:
        for batch in batches:
            with conn.transaction():
                conn.execute(_MIGRATED, [list(column) for column in zip(*batch, strict=True)])

    return write


def _reads(url: str, customers: list[Any], orgs: list[Any], repeats: int) -> dict[str, float]:
    """Milliseconds of each seed query (best of ``repeats``), on the table as it stands."""
    queries: dict[str, tuple[str, Callable[[], tuple[Any, ...]]]] = {
        "outcome = 'transfer'": (
            "SELECT count(*) FROM calls WHERE outcome = %s",
            lambda: (RARE_OUTCOME,),
        ),
        "customer's ended calls": (
            (
                "SELECT call_id FROM calls WHERE customer_id = %s AND status = 'ended'"
                " ORDER BY started_at DESC LIMIT 50"
            ),
            lambda: (random.choice(customers),),
        ),
        "organization's calls in progress": (
            "SELECT call_id FROM calls WHERE organization_id = %s AND status = 'in_progress'",
            lambda: (random.choice(orgs),),
        ),
    }
    found = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE calls")
        for name, (query, params) in queries.items():
            best = float("inf")
            for _ in range(repeats):
                started = time.perf_counter()
                conn.execute(query, params()).fetchall()
                best = min(best, time.perf_counter() - started)
            found[name] = best * 1000
    return found


def run(url: str, *, quick: bool) -> dict[str, Any]:
    runtime_calls = 500 if quick else 2000
    migrated_calls = 10_000 if quick else 50_000
    rounds = 3 if quick else 7
    rng = random.Random(3)
    customers, orgs = _accounts(url, 2_000 if quick else 10_000, 50)
    runtime = _runtime_rows(runtime_calls)
    migrated = _migrated_batches(migrated_calls, customers, orgs, rng)

    names = list(VARIANTS)
    seconds: dict[str, dict[str, list[float]]] = {n: {"runtime": [], "migrated": []} for n in names}
    wal: dict[str, dict[str, int]] = {n: {} for n in names}
    for round_ in range(rounds):  # each round measures every variant, in a rotating order
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            indexes, customer_id = VARIANTS[name]
            _set_indexes(url, indexes, customer_id)
            for path, (took, written) in (
                ("runtime", _measured(url, _runtime_writer(runtime))),
                ("migrated", _measured(url, _migrated_writer(migrated))),
            ):
                seconds[name][path].append(took)
                wal[name][path] = min(wal[name].get(path, written), written)
    base = names[0]
    writes = {}
    for name in names:
        runtime_s = statistics.median(seconds[name]["runtime"])
        migrated_s = statistics.median(seconds[name]["migrated"])
        writes[name] = {
            "runtime_calls_per_s": runtime_calls / runtime_s,
            "migrated_calls_per_s": migrated_calls / migrated_s,
            "runtime_vs_none": statistics.median(seconds[base]["runtime"]) / runtime_s,
            "migrated_vs_none": statistics.median(seconds[base]["migrated"]) / migrated_s,
            "runtime_wal_bytes_per_call": wal[name]["runtime"] / runtime_calls,
            "migrated_wal_bytes_per_call": wal[name]["migrated"] / migrated_calls,
        }

    # Reads: a table of calls half runtime (no customer), half migrated.
    _set_indexes(url, {}, True)
    writers = (_runtime_writer(_runtime_rows(migrated_calls)), _migrated_writer(migrated))

    def fill(conn: psycopg.Connection[Any]) -> None:
        for write in writers:
            write(conn)

    _measured(url, fill)
    repeats = 20 if quick else 50
    without = _reads(url, customers, orgs, repeats)
    _set_indexes(url, PARTIAL, False)
    with_indexes = _reads(url, customers, orgs, repeats)
    return {
        "runtime_calls": runtime_calls,
        "migrated_calls": migrated_calls,
        "rounds": rounds,
        "writes": writes,
        "reads_ms": {
            name: {"without": without[name], "with": with_indexes[name]} for name in without
        },
    }


def standalone(*, quick: bool) -> dict[str, Any]:
    with bench_stack(redis=False) as bench:
        url = bench.database("bench")
        results = run(url, quick=quick)
    print(f"{results['runtime_calls']} runtime calls, {results['migrated_calls']} migrated calls")
    print(
        f"{'indexes':<32} {'runtime/s':>10} {'vs none':>8} {'WAL B/call':>10}"
        f" {'migrated/s':>11} {'vs none':>8} {'WAL B/call':>10}"
    )
    for name, w in results["writes"].items():
        print(
            f"{name:<32} {w['runtime_calls_per_s']:>10,.0f} {w['runtime_vs_none']:>8.2f}"
            f" {w['runtime_wal_bytes_per_call']:>10,.0f}"
            f" {w['migrated_calls_per_s']:>11,.0f} {w['migrated_vs_none']:>8.2f}"
            f" {w['migrated_wal_bytes_per_call']:>10,.0f}"
        )
    print(f"{'read':<36} {'without ms':>10} {'with ms':>8}")
    for name, r in results["reads_ms"].items():
        print(f"{name:<36} {r['without']:>10.2f} {r['with']:>8.2f}")
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main("python -m bench.seed_indexes", __doc__, standalone, argv)


if __name__ == "__main__":
    main()
