"""Benchmark of the consistency check: ``python -m bench.consistency [--quick] [--json FILE]``.

Measures, on an embedded PostgreSQL started in a temporary directory (and Azurite for the
Azure part), in one run on one machine, every figure against a baseline of the same run:

* the call store's checks (``worker.consistency.runner``, what ``callstore check --full`` runs
  without Azure) over 10 k calls (2 k with ``--quick``), full, best of two rounds; then an
  incremental run after 1 % of the calls changed (``updated_at`` moved), a few of them damaged
  on purpose (a summary metric altered, a transcript deleted): its time, its ratio to the full
  run, and that it found exactly the damaged calls. History is made as ``bench.retention``
  makes it: a few hundred simulated calls persisted, then cloned in SQL.
* Azure against PostgreSQL (``worker.consistency.azure``): legacy data written into Azurite by
  the generator (the contract's cases plus realistic bulk) and migrated. With Azure's side
  read once, the PostgreSQL side is compared three ways, best of three each: by key range with
  bisection (``rangediff``, what the check does), call by call (every call's digest out of
  PostgreSQL, compared in Python: the leaves of the bisection applied to the whole key space),
  and row by row (every stored entry out of PostgreSQL, digests made in Python). Statements and
  rows fetched are counted for each. Then a few calls are altered in PostgreSQL: the cost of
  bisecting down to them, and that exactly they are found; repair migrates them again.
* The whole Azure check as ``callstore check --full`` runs it (reading both call tables of
  Azure included), and an incremental run after 1 % of the calls changed in Azure.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from bench.common import section_main, timed
from bench.retention import _make_history
from worker.azure.batch import run_batches
from worker.azure.client import AzureStorage
from worker.consistency import azure, rangediff, repair, store_digests
from worker.consistency.azure_digests import open_rejects, read_all
from worker.consistency.canonical import md5
from worker.consistency.checks import STORE_CHECKS
from worker.consistency.runner import Report, run_checks
from worker.consistency.types import CheckContext
from worker.db import build_engine
from worker.dev import azurite, stack
from worker.dev import legacy_data as g
from worker.log import configure_logging
from worker.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    calls: int
    templates: int
    damaged: int  # of the 1 % changed, damaged on purpose (half summaries, half transcripts)
    azure_calls: int  # bulk calls written to Azurite (about 15 entities each)
    differing: int  # calls altered in PostgreSQL for the bisection


QUICK = Sizes(calls=2_000, templates=100, damaged=6, azure_calls=700, differing=5)
FULL = Sizes(calls=10_000, templates=300, damaged=20, azure_calls=4_000, differing=10)
CHANGED_FRACTION = 0.01
ROUNDS = 2
COMPARE_RUNS = 3


def _settings(url: str, spool: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "broker_url": "redis+socket:///nonexistent/redis.socket",
        "log_level": "WARNING",
        "spool_dir": spool,
        "azure_connection_string": None,
        # Everything here was written seconds ago: an incremental run must look at what
        # changed since the previous run, not at the migration's overlap window.
        "migration_overlap_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


# -- the call store's checks -----------------------------------------------------------------


def _settle_history(url: str) -> None:
    """Make the cloned history look old to an incremental run. Cloning shifts every timestamp
    of a template call, ``created_at`` and ``updated_at`` too, which leaves many clones
    "changed" in the future; stored history was written, and last changed, long ago."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT c.table_name FROM information_schema.columns c"
                " JOIN information_schema.tables t USING (table_schema, table_name)"
                " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
                " AND c.column_name = 'created_at' AND c.table_name LIKE 'call%%'"
                " AND c.table_name NOT IN ('call_announcements')"
            )
        ]
        for table in tables:
            # On calls, the trigger also sets updated_at to now(): before any check runs.
            conn.execute(
                sql.SQL("UPDATE {} SET created_at = now() - interval '30 days'").format(
                    sql.Identifier(table)
                )
            )
        conn.execute("VACUUM ANALYZE")


def _change(conn: psycopg.Connection[Any], sizes: Sizes, rng: random.Random) -> dict[str, Any]:
    """Touch 1 % of the calls (``updated_at`` moves); damage ``sizes.damaged`` of them: half
    get a wrong summary metric, half lose their transcript. Returns what was damaged."""
    ids = [row[0] for row in conn.execute("SELECT call_id FROM calls ORDER BY call_id")]
    changed = rng.sample(ids, max(sizes.damaged, round(len(ids) * CHANGED_FRACTION)))
    summaries = changed[: sizes.damaged // 2]
    transcripts = changed[sizes.damaged // 2 : sizes.damaged]
    with conn.transaction():
        # An ordinary update of the call: the trigger moves updated_at.
        conn.execute(
            "UPDATE calls SET metadata = coalesce(metadata, '{}'::jsonb) || '{\"touched\": true}'"
            " WHERE call_id = ANY(%s)",
            (changed,),
        )
        conn.execute(
            "UPDATE calls SET total_messages = total_messages + 1 WHERE call_id = ANY(%s)",
            (summaries,),
        )
        conn.execute("DELETE FROM call_transcripts WHERE call_id = ANY(%s)", (transcripts,))
    return {
        "changed": len(changed),
        "expected": {("summary_mismatch", str(i)) for i in summaries}
        | {("missing_transcript", str(i)) for i in transcripts},
    }


def _found(report: Report) -> set[tuple[str, str]]:
    return {(d.kind, str(d.keys.get("call_id"))) for d in report.discrepancies}


def store_checks(url: str, settings: Settings, sizes: Sizes) -> dict[str, Any]:
    """Full and incremental runs of the store checks, ``ROUNDS`` times; repairs in between."""
    names = list(STORE_CHECKS)
    rng = random.Random(7)
    fulls: list[float] = []
    incrementals: list[float] = []
    examined: dict[str, int] = {}
    changed = 0
    exact = True
    per_check: dict[str, Any] = {}
    for attempt in range(ROUNDS):
        print(f"  store checks: full run {attempt + 1} ...", flush=True)
        full, seconds = timed(lambda: run_checks(settings, now=datetime.now(UTC), full=True))
        assert full.checks == names, full.checks
        assert full.clean, full.as_dict()["discrepancies"][:5]
        fulls.append(seconds)
        examined["full"] = int(full.stats["summaries_examined"])
        with psycopg.connect(url, autocommit=True) as conn:
            made = _change(conn, sizes, rng)
        changed = made["changed"]
        incremental, seconds = timed(lambda: run_checks(settings, now=datetime.now(UTC)))
        assert incremental.since == full.started_at, (incremental.since, full.started_at)
        incrementals.append(seconds)
        examined["incremental"] = int(incremental.stats["summaries_examined"])
        exact = exact and _found(incremental) == made["expected"]
        if attempt == ROUNDS - 1:
            per_check = _per_check(url, settings, incremental.since)
        repair.apply(settings, repair.plan(incremental.discrepancies))
    full_s, incremental_s = min(fulls), min(incrementals)
    per_check = {name: per_check[name] for name in names}
    return {
        "calls": sizes.calls,
        "checks": names,
        "full_seconds": round(full_s, 3),
        "full_runs_seconds": [round(s, 3) for s in fulls],
        "changed_calls": changed,
        "damaged_calls": sizes.damaged,
        "incremental_seconds": round(incremental_s, 3),
        "incremental_runs_seconds": [round(s, 3) for s in incrementals],
        "incremental_ratio": round(incremental_s / full_s, 3),
        "summaries_examined": examined,
        "found_exactly_the_damaged": exact,
        "per_check_ms": per_check,
    }


def _per_check(url: str, settings: Settings, since: datetime | None) -> dict[str, Any]:
    """Each check on its own, full and incremental (``since``): where the time goes."""
    found: dict[str, dict[str, float]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for mode, window in (("full", None), ("incremental", since)):
            for name, check in STORE_CHECKS.items():
                ctx = CheckContext(conn, settings, datetime.now(UTC), window)
                _, seconds = timed(lambda: list(check(ctx)))  # noqa: B023 - called at once
                found.setdefault(name, {})[mode] = round(seconds * 1000, 1)
    return found


# -- Azure against PostgreSQL: the ways of comparing -----------------------------------------


def _header_sql() -> sql.Composable:
    """The header line of a call as ``store_digests`` renders it (its ``header_md5`` input)."""
    return sql.SQL(
        "CASE WHEN c.headless THEN 'null' ELSE json_build_array(c.customer, {}, {},"
        " c.duration_seconds, c.call_type, c.direction, c.status, c.conversation_id, c.outcome,"
        " c.agent_name, c.metadata)::text END"
    ).format(store_digests._us("c", "started_at"), store_digests._us("c", "ended_at"))


#: Every stored line of every migrated call (its header, then its entries in order): what a
#: row-by-row comparison fetches.
ROWS = store_digests._digests(sql.SQL("TRUE")) + sql.SQL(
    """
SELECT sid, sequence, line FROM (
    SELECT c.sid, -1 AS sequence, ''::text AS kind, {header} AS line FROM c
    UNION ALL
    SELECT e.sid, e.sequence, e.kind, e.line FROM e
     WHERE NOT EXISTS (SELECT 1 FROM rejected x WHERE x.sid = e.sid AND x.sequence = e.sequence)
) u ORDER BY sid COLLATE "C", sequence, kind COLLATE "C"
"""
).format(header=_header_sql())


def _row_digests(rows: Iterator[tuple[str, int, str]]) -> Iterator[tuple[str, str]]:
    """``(sid, digest)`` from the lines of ``ROWS``, the digests made as the check makes them."""
    current: str | None = None
    header = ""
    lines: list[str] = []

    def done() -> tuple[str, str] | None:
        if current is None or (header == "null" and not lines):
            return None  # nothing of the call would be stored
        return current, md5(md5(header) + md5("\n".join(lines)))

    for sid, sequence, line in rows:
        if sid != current:
            if (item := done()) is not None:
                yield item
            current, header, lines = sid, line, []
        elif sequence >= 0:
            lines.append(line)
    if (item := done()) is not None:
        yield item


class _CountingSide(azure.StoreSide):
    """The check's PostgreSQL side, counting the rows its statements return."""

    rows = 0

    def buckets(self, lo: str, hi: str, bounds: Any) -> dict[int, tuple[int, str]]:
        found = super().buckets(lo, hi, bounds)
        self.rows += len(found)
        return found

    def calls(self, lo: str, hi: str) -> dict[str, str]:
        found = super().calls(lo, hi)
        self.rows += len(found)
        return found


def compare_ranges(conn: psycopg.Connection[Any], azure_side: dict[str, str]) -> dict[str, Any]:
    store = _CountingSide(conn)
    result, seconds = timed(lambda: rangediff.diff(rangediff.SortedSide(azure_side), store))
    return {
        "seconds": seconds,
        "statements": store.statements,
        "rows_fetched": store.rows,
        **result.stats(),
        "differing": sorted([*result.only_left, *result.only_right, *result.differing]),
    }


def compare_calls(conn: psycopg.Connection[Any], azure_side: dict[str, str]) -> dict[str, Any]:
    def work() -> tuple[int, list[str]]:
        ours = store_digests.call_digests(conn, rangediff.bound(0), rangediff.bound(2**128))
        keys = ours.keys() | azure_side.keys()
        return len(ours), sorted(k for k in keys if ours.get(k) != azure_side.get(k))

    (fetched, differing), seconds = timed(work)
    return {"seconds": seconds, "statements": 1, "rows_fetched": fetched, "differing": differing}


def compare_rows(conn: psycopg.Connection[Any], azure_side: dict[str, str]) -> dict[str, Any]:
    def work() -> tuple[int, list[str]]:
        with conn.cursor() as cursor:
            cursor.execute(ROWS)
            ours = dict(_row_digests(iter(cursor)))
            fetched = cursor.rowcount
        keys = ours.keys() | azure_side.keys()
        return fetched, sorted(k for k in keys if ours.get(k) != azure_side.get(k))

    (fetched, differing), seconds = timed(work)
    return {"seconds": seconds, "statements": 1, "rows_fetched": fetched, "differing": differing}


WAYS: dict[str, Callable[[psycopg.Connection[Any], dict[str, str]], dict[str, Any]]] = {
    "ranges": compare_ranges,
    "calls": compare_calls,
    "rows": compare_rows,
}


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["runs_seconds"] = [round(r["seconds"], 4) for r in runs]
    best["seconds"] = round(best["seconds"], 4)
    best["differing"] = len(best["differing"])
    return best


def compare_ways(conn: psycopg.Connection[Any], azure_side: dict[str, str]) -> dict[str, Any]:
    """Each way of comparing, ``COMPARE_RUNS`` times alternated; the best of each."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in WAYS}
    for _ in range(COMPARE_RUNS):
        for name, way in WAYS.items():
            runs[name].append(way(conn, azure_side))
    return {name: _best(found) for name, found in runs.items()}


def _alter(conn: psycopg.Connection[Any], count: int, rng: random.Random) -> list[str]:
    """Alter one message of ``count`` migrated calls in PostgreSQL; their SIDs."""
    sids = [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT c.twilio_call_sid FROM calls c JOIN call_messages m"
            " ON m.call_id = c.call_id WHERE c.source = 'azure' ORDER BY 1"
        )
    ]
    chosen = sorted(rng.sample(sids, count))
    conn.execute(
        """
        UPDATE call_messages m SET content = m.content || ' (altered)'
          FROM (SELECT DISTINCT ON (m.call_id) m.call_id, m.sequence
                  FROM call_messages m JOIN calls c ON c.call_id = m.call_id
                 WHERE c.source = 'azure' AND c.twilio_call_sid = ANY(%s)
                 ORDER BY m.call_id, m.sequence) x
         WHERE m.call_id = x.call_id AND m.sequence = x.sequence
        """,
        (chosen,),
    )
    return chosen


def _change_in_azure(storage: AzureStorage, sids: list[str]) -> None:
    """One more transcript entry for each of ``sids``, written to Azure after the migration."""
    table = storage.table("CallTranscripts")
    for sid in sids:
        table.upsert_entity(
            {"PartitionKey": sid, "RowKey": "000999", "timestamp": "2025-06-30T12:00:00",
             "speaker": "agent", "text": "Written after the migration."}
        )  # fmt: skip


def _azure_sids(report: Report) -> set[str]:
    return {str(d.keys.get("call_sid")) for d in report.discrepancies}


def azure_comparison(
    admin_url: str, workdir: Path, sizes: Sizes, rng: random.Random
) -> dict[str, Any]:
    server = azurite.start(log_dir=workdir / "azurite")
    try:
        url = stack.create_database(admin_url, "consistency_azure")
        stack.migrate_database(url, premake_months=3)
        settings = _settings(
            url, workdir / "spool", azure_connection_string=server.connection_string
        )
        storage = AzureStorage(server.connection_string)
        print(f"  azure: writing {sizes.azure_calls} legacy calls to Azurite ...", flush=True)
        written = g.write_cases(storage)
        written.merge(g.write_bulk(storage, calls=sizes.azure_calls, seed=1))
        print(f"  azure: migrating {written.total} entities ...", flush=True)
        engine = build_engine(settings)
        try:
            migrated, migrate_seconds = timed(
                lambda: run_batches(
                    settings,
                    clock=lambda: datetime.now(UTC),
                    storage=storage,
                    engine=engine,
                    batch_size=1000,
                    log_batches=False,
                )
            )
        finally:
            engine.dispose()
        assert migrated.caught_up
        names = list(azure.AZURE_CHECKS)

        def check(*, full: bool) -> tuple[Report, float]:
            return timed(
                lambda: run_checks(settings, now=datetime.now(UTC), full=full, names=names)
            )

        print("  azure: full check ...", flush=True)
        first, first_seconds = check(full=True)
        assert first.clean, first.as_dict()["discrepancies"][:5]

        with psycopg.connect(url, autocommit=True) as conn:
            found = read_all(storage, open_rejects(conn))
            azure_side = {sid: d.digest for sid, d in found.calls.items()}
            print(f"  azure: comparing {len(azure_side)} calls three ways ...", flush=True)
            clean = compare_ways(conn, azure_side)
            assert all(way["differing"] == 0 for way in clean.values()), clean
            altered = _alter(conn, sizes.differing, rng)
            differing = compare_ways(conn, azure_side)
            ranges = compare_ranges(conn, azure_side)
            exact = ranges["differing"] == altered
            repaired = repair.apply(
                settings, repair.plan(run_checks(settings, now=datetime.now(UTC), full=True,
                                                 names=names).discrepancies)
            )  # fmt: skip

        print("  azure: full check after repair, then incremental ...", flush=True)
        second, second_seconds = check(full=True)
        assert second.clean, second.as_dict()["discrepancies"][:5]
        best = first if first_seconds <= second_seconds else second
        full_seconds = min(first_seconds, second_seconds)
        changed = sorted(rng.sample(sorted(azure_side), max(1, round(len(azure_side) * 0.01))))
        _change_in_azure(storage, changed)
        incremental, incremental_seconds = check(full=False)
        assert incremental.since == second.started_at
        incremental_exact = _azure_sids(incremental) == set(changed)
    finally:
        server.stop()
    calls_stats = best.stats[azure.CHECK_CALLS]
    return {
        "entities": written.total,
        "calls": len(azure_side),
        "migrate_seconds": round(migrate_seconds, 2),
        "full_check_seconds": round(full_seconds, 3),
        "full_check_runs_seconds": [round(first_seconds, 3), round(second_seconds, 3)],
        "azure_read_seconds": calls_stats["azure_read_seconds"],
        "compare_seconds": calls_stats["compare_seconds"],
        "entities_read": calls_stats["entities_read"],
        "clean": clean,
        "ranges_vs_calls": round(clean["ranges"]["seconds"] / clean["calls"]["seconds"], 3),
        "ranges_vs_rows": round(clean["ranges"]["seconds"] / clean["rows"]["seconds"], 3),
        "altered": len(altered),
        "differing": differing,
        "bisection_found_exactly_the_altered": exact,
        "repair": repaired,
        "changed_in_azure": len(changed),
        "incremental_seconds": round(incremental_seconds, 3),
        "incremental_ratio": round(incremental_seconds / full_seconds, 3),
        "incremental_entities_read": incremental.stats[azure.CHECK_CALLS]["entities_read"],
        "incremental_found_exactly_the_changed": incremental_exact,
    }


def run(
    *, quick: bool = False, sizes: Sizes | None = None, workdir: Path | None = None
) -> dict[str, Any]:
    """Run every measurement; return the figures (and print them)."""
    sizes = sizes or (QUICK if quick else FULL)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="callstore-bench-consistency-", dir=workdir) as tmp:
        workdir = Path(tmp)
        paths = stack.paths(workdir / "stack")
        admin = stack.start_postgres(paths)
        try:
            configure_logging(_settings(admin, workdir / "spool"))
            url = stack.create_database(admin, "consistency_store")
            stack.migrate_database(url, premake_months=3)
            print(f"consistency: making {sizes.calls} calls of history ...", flush=True)
            _make_history(url, sizes.calls, sizes.templates)
            _settle_history(url)
            store = store_checks(url, _settings(url, workdir / "spool"), sizes)
            azure_figures = azure_comparison(admin, workdir, sizes, random.Random(11))
        finally:
            stack.stop_postgres(paths, mode="immediate")
    results: dict[str, Any] = {
        "quick": quick,
        "store": store,
        "azure": azure_figures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    store, az = results["store"], results["azure"]
    print(
        f"store checks over {store['calls']:,} calls: full {store['full_seconds']:.2f} s;"
        f" incremental after {store['changed_calls']} changed ({store['damaged_calls']} damaged)"
        f" {store['incremental_seconds']:.3f} s = {store['incremental_ratio']:.3f} of full;"
        f" found exactly the damaged: {store['found_exactly_the_damaged']}"
    )
    print(
        "  per check, full/incremental ms: "
        + ", ".join(
            f"{n} {v['full']:.1f}/{v['incremental']:.1f}" for n, v in store["per_check_ms"].items()
        )
    )
    print(
        f"azure ({az['entities']:,} entities, {az['calls']:,} calls): full check"
        f" {az['full_check_seconds']:.2f} s (Azure read {az['azure_read_seconds']:.2f} s,"
        f" PostgreSQL compare {az['compare_seconds']:.3f} s)"
    )
    for title, key in (("clean", "clean"), (f"{az['altered']} calls differ", "differing")):
        print(f"  compare, {title}:")
        for name, way in az[key].items():
            print(
                f"    {name:<7} {way['seconds'] * 1000:9.1f} ms  {way['statements']:>4} statements"
                f"  {way['rows_fetched']:>8,} rows fetched  {way['differing']} differing"
            )
    print(
        f"  ranges/calls {az['ranges_vs_calls']:.3f}, ranges/rows {az['ranges_vs_rows']:.3f};"
        f" bisection found exactly the altered: {az['bisection_found_exactly_the_altered']};"
        f" repair: {'; '.join(az['repair'])}"
    )
    print(
        f"  incremental after {az['changed_in_azure']} calls changed in Azure:"
        f" {az['incremental_seconds']:.2f} s = {az['incremental_ratio']:.3f} of full"
        f" ({az['incremental_entities_read']:,} entities read); found exactly the changed:"
        f" {az['incremental_found_exactly_the_changed']}"
    )
    print(f"consistency benchmark took {results['seconds']} s")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main("python -m bench.consistency", __doc__, run, argv)


if __name__ == "__main__":
    main()


def bench_section(quick: bool) -> dict[str, Any]:
    """The consistency figures for ``python -m bench``."""
    return run(quick=quick)


def markdown(results: dict[str, Any]) -> list[str]:
    """The consistency section of docs/benchmarks.md."""
    store, az = results["store"], results["azure"]
    lines = [
        "## Consistency check",
        "",
        (
            f"The call store's checks over {store['calls']:,} calls: a full run took "
            f"{store['full_seconds']:.2f} s; an incremental run after {store['changed_calls']} calls "
            f"changed (1 %, {store['damaged_calls']} of them damaged) {store['incremental_seconds']:.3f} s, "
            f"{store['incremental_ratio']:.3f} of the full run, and found "
            f"{'exactly the damaged calls' if store['found_exactly_the_damaged'] else 'OTHER calls than the damaged'}."
        ),
        "",
        (
            f"Azure against PostgreSQL, {az['calls']:,} migrated calls ({az['entities']:,} entities "
            f"in Azurite): the full check took {az['full_check_seconds']:.2f} s, of which reading "
            f"Azure {az['azure_read_seconds']:.2f} s. With Azure's side read once, PostgreSQL's side "
            "compared three ways (best of three):"
        ),
        "",
        "| comparison | calls differ | time | statements | rows fetched |",
        "|---|---|---|---|---|",
    ]
    for key, title in (("clean", "none"), ("differing", str(az["altered"]))):
        for name, way in az[key].items():
            label = {
                "ranges": "key ranges, bisection",
                "calls": "call by call",
                "rows": "row by row",
            }[name]
            lines.append(
                f"| {label} | {title} | {way['seconds'] * 1000:,.1f} ms | {way['statements']} | "
                f"{way['rows_fetched']:,} |"
            )
    lines += [
        "",
        (
            f"A clean comparison by key range costs {az['ranges_vs_calls']:.3f} of the call-by-call "
            f"one and {az['ranges_vs_rows']:.3f} of the row-by-row one. After {az['changed_in_azure']} "
            f"calls changed in Azure, the incremental check took {az['incremental_seconds']:.2f} s "
            f"({az['incremental_ratio']:.3f} of the full check)."
        ),
    ]
    return lines
