"""Running a set of checks and keeping the report.

Incremental by default: a run examines what changed since the previous completed run started
(its watermark, in the database's own clock), so routine runs cost in proportion to what
changed. ``full=True`` (or the first run ever) examines everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from worker.consistency import azure
from worker.consistency.checks import STORE_CHECKS
from worker.consistency.types import Check, CheckContext, Discrepancy
from worker.db import translate_database_errors
from worker.jobs import JobName, Skipped, exclusive_job
from worker.settings import Settings, get_settings


def available_checks(settings: Settings | None = None) -> dict[str, Check]:
    """Every check by name: the call store's, and the Azure comparison where configured
    (``CALLSTORE_AZURE_CONNECTION_STRING``)."""
    checks: dict[str, Check] = dict(STORE_CHECKS)
    if azure.configured(settings or get_settings()):
        checks.update(azure.AZURE_CHECKS)
    return checks


@dataclass
class Report:
    id: UUID | None
    started_at: datetime
    as_of: datetime
    since: datetime | None
    checks: list[str]
    discrepancies: list[Discrepancy] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    finished_at: datetime | None = None

    @property
    def clean(self) -> bool:
        return not self.discrepancies

    @property
    def status(self) -> str:
        return "clean" if self.clean else "discrepancies"

    def summary(self) -> dict[str, Any]:
        """The periodic task's result and its ``job_runs.last_details``."""
        return {
            "report_id": str(self.id),
            "status": self.status,
            "discrepancies": len(self.discrepancies),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id) if self.id else None,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "as_of": self.as_of.isoformat(),
            "incremental_since": self.since.isoformat() if self.since else None,
            "checks": self.checks,
            "discrepancy_count": len(self.discrepancies),
            "discrepancies": [
                {
                    "check": d.check,
                    "class": d.kind,
                    "keys": d.keys,
                    "detail": d.detail,
                    "repairable": d.repairable,
                }
                for d in self.discrepancies
            ],
            "stats": self.stats,
        }


def watermark(conn: psycopg.Connection[Any], checks: Iterable[str] = ()) -> datetime | None:
    """Start of the last completed run of (at least) ``checks``: what changed since then is
    what a new run of them examines. A run of other checks does not move their watermark."""
    row = conn.execute(
        "SELECT max(started_at) FROM consistency_reports"
        " WHERE status IN ('clean', 'discrepancies') AND checks @> %s",
        (list(checks),),
    ).fetchone()
    return row[0] if row else None


def run_checks(
    settings: Settings,
    *,
    now: datetime,
    since: datetime | None = None,
    full: bool = False,
    names: Iterable[str] | None = None,
    store: bool = True,
) -> Report:
    """Run the checks and (by default) store the report; raises on a database failure."""
    registry = available_checks(settings)
    selected = list(names) if names else list(registry)
    unknown = [n for n in selected if n not in registry]
    if unknown:
        reason = f"unknown check(s): {', '.join(unknown)}; known: {', '.join(registry)}"
        if any(n in azure.AZURE_CHECKS for n in unknown):
            reason = f"{', '.join(unknown)}: {azure.NOT_CONFIGURED}"
        raise ValueError(reason)
    with (
        translate_database_errors(),
        psycopg.connect(settings.libpq_url, autocommit=True, connect_timeout=10) as conn,
    ):
        started_row = conn.execute("SELECT clock_timestamp()").fetchone()
        assert started_row is not None
        effective_since = None if full else (since or watermark(conn, selected))
        report = Report(None, started_row[0], now, effective_since, selected)
        if not azure.configured(settings):
            report.stats["azure"] = {"skipped": azure.NOT_CONFIGURED}
        if store:
            report.id = _open(conn, report)
        ctx = CheckContext(conn, settings, now, effective_since, report.stats)
        try:
            for name in selected:
                report.discrepancies.extend(registry[name](ctx))
        except BaseException as error:
            if store and report.id:
                conn.execute(
                    "UPDATE consistency_reports SET status = 'failed', finished_at = clock_timestamp(),"
                    " error = %s WHERE id = %s",
                    (f"{type(error).__name__}: {error}"[:4000], report.id),
                )
            raise
        finished = conn.execute("SELECT clock_timestamp()").fetchone()
        report.finished_at = finished[0] if finished else None
        if store:
            _close(conn, report)
    return report


def run_check_job(settings: Settings, *, now: datetime, full: bool = False) -> Report | Skipped:
    """The ``consistency.check`` job: every check, incrementally unless ``full``, with its
    report stored, under the job's lock."""
    with exclusive_job(settings, JobName.CONSISTENCY_CHECK) as job:
        if job is None:
            return Skipped(JobName.CONSISTENCY_CHECK)
        report = run_checks(settings, now=now, full=full)
        job.details.update(report.summary())
    return report


def _open(conn: psycopg.Connection[Any], report: Report) -> UUID:
    row = conn.execute(
        "INSERT INTO consistency_reports (started_at, status, full_scan, since, checks, discrepancy_count)"
        " VALUES (%s, 'running', %s, %s, %s, 0) RETURNING id",
        (report.started_at, report.since is None, report.since, report.checks),
    ).fetchone()
    assert row is not None
    report_id: UUID = row[0]
    return report_id


def _close(conn: psycopg.Connection[Any], report: Report) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        if report.discrepancies:
            cursor.executemany(
                'INSERT INTO consistency_discrepancies (report_id, "check", "class", keys, detail,'
                " repairable) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (report.id, d.check, d.kind, Jsonb(d.keys), d.detail, d.repairable)
                    for d in report.discrepancies
                ],
            )
        cursor.execute(
            "UPDATE consistency_reports SET status = %s, finished_at = %s, discrepancy_count = %s,"
            " stats = %s WHERE id = %s",
            (
                report.status,
                report.finished_at,
                len(report.discrepancies),
                Jsonb({**report.stats, "as_of": report.as_of.isoformat()}),
                report.id,
            ),
        )


def history(settings: Settings, *, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent reports, newest first, with their discrepancy counts by class."""
    with translate_database_errors(), psycopg.connect(settings.libpq_url) as conn:
        rows = conn.execute(
            """SELECT r.id, r.started_at, r.finished_at, r.status, r.full_scan, r.since, r.checks,
                      r.discrepancy_count, r.error,
                      coalesce((SELECT jsonb_object_agg(k, n) FROM (
                          SELECT "class" AS k, count(*) AS n FROM consistency_discrepancies d
                           WHERE d.report_id = r.id GROUP BY "class") x), '{}'::jsonb)
                 FROM consistency_reports r ORDER BY r.started_at DESC LIMIT %s""",
            (limit,),
        ).fetchall()
    return [
        {
            "id": str(r[0]),
            "started_at": r[1].isoformat(),
            "finished_at": r[2].isoformat() if r[2] else None,
            "status": r[3],
            "scope": "full" if r[4] else f"since {r[5].isoformat()}",
            "checks": r[6],
            "discrepancies": r[7],
            "error": r[8],
            "by_class": r[9],
        }
        for r in rows
    ]
