"""Benchmark of full-text search on transcripts: ``python -m bench.fulltext [--quick] [--json FILE]``.

Seed 001 searches transcripts with
``to_tsvector('english', transcript_text) @@ plainto_tsquery('english', ...)``. Measures, on an
embedded PostgreSQL started in a temporary directory, with 100 k transcripts (20 k with
``--quick``) of simulated conversation lines, one in 200 of them about diabetes medication:

* seed 001's query, run as its guide writes it (SQLAlchemy ORM, ``LIMIT 50``) and for every
  match, through the one expression index (``ix_call_transcripts_transcript_text_fts``) and,
  as the baseline of the same run, without it, as before revision 0007 (where only a stored
  ``search_vector`` column was indexed, so this query read every transcript);
* what writes pay: inserting 10 k transcripts (pending GIN entries flushed) with the one index,
  against the old schema (the stored column and its index) and against both at once.

Each query time is the best of five runs after a warm-up: the least disturbed by other load.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bench.common import best_of, section_main
from models import CallTranscript
from worker.db import build_engine
from worker.dev import stack
from worker.dev.simulate import ASSISTANT_LINES, USER_LINES
from worker.settings import Settings

FTS_INDEX = "ix_call_transcripts_transcript_text_fts"
TOPIC = "I have a question about my diabetes medication."
#: One transcript in this many mentions the topic ...
TOPIC_EVERY = 200
#: ... and no other does: the simulated lines that mention diabetes are left out.
USER_VOCABULARY = tuple(line for line in USER_LINES if "diabet" not in line.lower())
ASSISTANT_VOCABULARY = tuple(line for line in ASSISTANT_LINES if "diabet" not in line.lower())
WRITE_ROWS = 10_000
REPEATS = 5

CREATE_INDEX = (
    "CREATE INDEX ix_call_transcripts_transcript_text_fts ON call_transcripts"
    " USING gin (to_tsvector('english'::regconfig, transcript_text))"
)
DROP_INDEX = "DROP INDEX ix_call_transcripts_transcript_text_fts"
ADD_STORED_VECTOR = (
    "ALTER TABLE call_transcripts ADD COLUMN search_vector tsvector"
    " GENERATED ALWAYS AS (to_tsvector('english'::regconfig, transcript_text)) STORED"
)
CREATE_STORED_INDEX = (
    "CREATE INDEX ix_call_transcripts_search_vector ON call_transcripts USING gin (search_vector)"
)
DROP_STORED_VECTOR = "ALTER TABLE call_transcripts DROP COLUMN search_vector"
COUNT_MATCHES = (
    "SELECT count(*) FROM call_transcripts"
    " WHERE to_tsvector('english', transcript_text) @@ plainto_tsquery('english', %s)"
)


def seed_query(engine: Engine) -> list[Any]:
    """Seed 001's "Search Transcripts (Full-Text)", async session made sync."""
    with Session(engine) as session:
        result = session.execute(
            select(CallTranscript)
            .where(
                func.to_tsvector("english", CallTranscript.transcript_text).op("@@")(
                    func.plainto_tsquery("english", "diabetes medication")
                )
            )
            .limit(50)
        )
        return list(result.scalars().all())


def _transcript(rng: random.Random, n: int) -> str:
    lines = []
    for turn in range(rng.randint(4, 15)):
        user = TOPIC if turn == 0 and n % TOPIC_EVERY == 0 else rng.choice(USER_VOCABULARY)
        lines += [f"user: {user}", f"assistant: {rng.choice(ASSISTANT_VOCABULARY)}"]
    return "\n".join(lines)


def _load(conn: psycopg.Connection[Any], count: int, *, first: int = 0) -> None:
    """``count`` calls with a transcript each, by COPY."""
    rng = random.Random(first)
    started = datetime(2026, 11, 1, tzinfo=UTC)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]
    with conn.cursor() as cursor:
        with cursor.copy(
            "COPY calls (call_id, tenant_id, agent_id, status, started_at, revision) FROM STDIN"
        ) as copy:
            for n, call_id in enumerate(ids, start=first):
                copy.write_row(
                    (call_id, call_id, call_id, "ended", started + timedelta(seconds=n), 1)
                )
        with cursor.copy(
            "COPY call_transcripts (call_id, transcript_text, transcript_data, message_count)"
            " FROM STDIN"
        ) as copy:
            for n, call_id in enumerate(ids, start=first):
                text = _transcript(rng, n)
                copy.write_row((call_id, text, "[]", text.count("\n") + 1))


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _query_times(engine: Engine, conn: psycopg.Connection[Any]) -> dict[str, Any]:
    def all_matches() -> int:
        row = conn.execute(COUNT_MATCHES, ("diabetes medication",)).fetchone()
        assert row is not None
        return int(row[0])

    found = len(seed_query(engine))
    matches = all_matches()
    return {
        "seed_query_ms": best_of(REPEATS, lambda: _timed(lambda: seed_query(engine))) * 1000,
        "seed_query_rows": found,
        "all_matches_ms": best_of(REPEATS, lambda: _timed(all_matches)) * 1000,
        "all_matches": matches,
    }


def _write_cost(conn: psycopg.Connection[Any], first: int) -> float:
    """Seconds to insert ``WRITE_ROWS`` transcripts (and their calls) with their index entries
    flushed, then the rows removed again."""
    started = time.perf_counter()
    with conn.transaction():
        _load(conn, WRITE_ROWS, first=first)
    for (index,) in conn.execute(
        "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_am a"
        " ON a.oid = (SELECT relam FROM pg_class WHERE oid = i.indexrelid)"
        " WHERE indrelid = 'call_transcripts'::regclass AND a.amname = 'gin'"
    ).fetchall():
        conn.execute("SELECT gin_clean_pending_list(%s::regclass)", (index,))
    seconds = time.perf_counter() - started
    conn.execute("DELETE FROM calls WHERE started_at >= %s", (datetime(2030, 1, 1, tzinfo=UTC),))
    conn.execute("VACUUM call_transcripts")
    return seconds


def _write_costs(conn: psycopg.Connection[Any], rows: int) -> dict[str, float]:
    # Written calls start in 2030 (``first`` moves their times), so they are easy to remove.
    first = 4 * 365 * 86400 - 20 * 86400 + rows
    costs = {"one_index": _write_cost(conn, first)}
    conn.execute(DROP_INDEX)
    conn.execute(ADD_STORED_VECTOR)
    conn.execute(CREATE_STORED_INDEX)
    costs["old_stored_column"] = _write_cost(conn, first)
    conn.execute(CREATE_INDEX)
    costs["both"] = _write_cost(conn, first)
    conn.execute(DROP_STORED_VECTOR)
    return costs


def run(*, quick: bool = False) -> dict[str, Any]:
    rows = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="callstore-bench-fts-") as directory:
        paths = stack.paths(Path(directory))
        admin = stack.start_postgres(paths)
        try:
            url = stack.create_database(admin, "fulltext")
            stack.migrate_database(url, premake_months=0)
            # No broker is started: the engine is all this section needs of the settings.
            settings = Settings(_env_file=None, database_url=url, broker_url="redis://unused")
            engine = build_engine(settings)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(DROP_INDEX)
                with conn.transaction():
                    _load(conn, rows)
                build_seconds = _timed(lambda: conn.execute(CREATE_INDEX))
                conn.execute("VACUUM ANALYZE calls, call_transcripts")
                size = conn.execute("SELECT pg_relation_size(%s::regclass)", (FTS_INDEX,))
                index_mb = (size.fetchone() or (0,))[0] / 2**20
                indexed = _query_times(engine, conn)
                conn.execute(DROP_INDEX)
                scanned = _query_times(engine, conn)
                conn.execute(CREATE_INDEX)
                writes = _write_costs(conn, rows)
            engine.dispose()
        finally:
            stack.stop_postgres(paths, mode="fast")
    results: dict[str, Any] = {
        "quick": quick,
        "transcripts": rows,
        "index_build_seconds": build_seconds,
        "index_mb": index_mb,
        "indexed": indexed,
        "without_index": scanned,
        "seed_query_speedup": scanned["seed_query_ms"] / indexed["seed_query_ms"],
        "all_matches_speedup": scanned["all_matches_ms"] / indexed["all_matches_ms"],
        "write_rows": WRITE_ROWS,
        "write_seconds": writes,
    }
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    for line in markdown(results):
        print(line)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return section_main("python -m bench.fulltext", __doc__, run, argv)


def bench_section(quick: bool) -> dict[str, Any]:
    """The full-text figures for ``python -m bench``."""
    return run(quick=quick)


def markdown(results: dict[str, Any]) -> list[str]:
    """The full-text section of docs/benchmarks.md."""
    indexed, scanned = results["indexed"], results["without_index"]
    writes = results["write_seconds"]
    rate = {name: results["write_rows"] / seconds for name, seconds in writes.items()}
    intro = (
        f"Seed 001's transcript search on {results['transcripts']:,} transcripts (one in"
        f" {TOPIC_EVERY} about diabetes medication), `python -m bench.fulltext`: through the"
        " one full-text index, and without it as before revision 0007 (only a stored"
        " `search_vector` column was indexed, which this query does not use). Best of"
        f" {REPEATS} runs."
    )
    seed_row = (
        f"| the seed's ORM query as written (`LIMIT 50`, {indexed['seed_query_rows']} rows)"
        f" | {indexed['seed_query_ms']:,.1f} ms | {scanned['seed_query_ms']:,.1f} ms"
        f" | {results['seed_query_speedup']:,.0f}x |"
    )
    all_row = (
        f"| every match (`count(*)`, {indexed['all_matches']:,} rows)"
        f" | {indexed['all_matches_ms']:,.1f} ms | {scanned['all_matches_ms']:,.1f} ms"
        f" | {results['all_matches_speedup']:,.0f}x |"
    )
    costs = (
        f"Building the index took {results['index_build_seconds']:.1f} s; it holds"
        f" {results['index_mb']:,.1f} MB. Inserting {results['write_rows']:,} transcripts with"
        f" their index entries: one expression index {writes['one_index']:.2f} s"
        f" ({rate['one_index']:,.0f}/s); the old stored column and its index"
        f" {writes['old_stored_column']:.2f} s ({rate['old_stored_column']:,.0f}/s); both at"
        f" once {writes['both']:.2f} s ({rate['both']:,.0f}/s)."
    )
    return [
        "## Full-text search",
        "",
        intro,
        "",
        "| query | through the index | without it (reads every transcript) | speed-up |",
        "|---|---|---|---|",
        seed_row,
        all_row,
        "",
        costs,
    ]


if __name__ == "__main__":
    main()
