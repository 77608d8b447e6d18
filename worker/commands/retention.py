"""``callstore retention run [--dry-run]``: apply CALLSTORE_RETENTION_DAYS now (or at --now)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from worker.commands.common import NowOption, console, fail, parse_now
from worker.jobs import Skipped
from worker.maintenance import retention
from worker.settings import get_settings

app = typer.Typer(help="Delete expired calls and archive, export and drop expired partitions.")

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print what a run would do and change nothing.")
]


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def print_plan(plan: retention.RetentionPlan) -> None:
    """The dry run's output: exactly what a run at the same time would do."""
    policy = plan.policy
    if plan.cutoff is None:
        _say("retention is off (CALLSTORE_RETENTION_DAYS=0): a run would change nothing")
        return
    _say(
        f"as of {plan.now.isoformat(timespec='seconds')}: keep {policy.retention_days} day(s); "
        f"calls that started before {plan.cutoff.calls_before.isoformat(timespec='seconds')} "
        f"are expired, and months before {plan.cutoff.keep_from:%Y-%m}"
    )
    for name in plan.finalize:
        _say(f"would finish the interrupted detach of {name}")
    by_source = ", ".join(f"{source} {count:,}" for source, count in plan.calls_by_source.items())
    _say(
        f"would delete {plan.calls:,} call(s)"
        + (f" ({by_source})" if by_source else "")
        + f" with their rows, {policy.batch_size} per transaction"
    )
    for item in plan.archive:
        _say(
            f"would detach {item.name} ({item.month:%Y-%m}, ~{item.estimated_rows:,} row(s)) "
            "and move it to the archive"
        )
    for path in plan.export:
        _say(f"would export to {path}")
    if plan.drop:
        before = plan.drop_archived_before.isoformat(timespec="seconds")
        _say(f"would drop (archived at or before {before}, grace {policy.grace_days} day(s)):")
    for name in plan.drop:
        _say(f"  {name}")
    for note in plan.left_alone:
        _say(f"would leave alone {note}")
    if not (plan.finalize or plan.calls or plan.archive or plan.export or plan.drop):
        _say("nothing to do")


def print_report(report: retention.RetentionReport) -> None:
    _say(
        f"deleted {report.calls_deleted:,} call(s) and {report.timeline_rows_deleted:,} timeline "
        f"row(s) in {report.batches} batch(es)"
    )
    for name in report.finalized:
        _say(f"finished the interrupted detach of {name}")
    for name in report.archived:
        _say(f"archived {name}")
    for path in report.exported:
        _say(f"exported {path}")
    for name in report.dropped:
        _say(f"dropped {name}")
    for name in report.missing:
        _say(f"not in the archive any more (restored or removed by hand): {name}")
    for note in report.kept_back:
        _say(f"kept back: {note}")
    if not report.complete:
        _say("time budget spent: the next run goes on")
    for error in report.errors:
        _say(f"error: {error}")


@app.command("run")
def run(dry_run: DryRun = False, now: NowOption = None) -> None:
    """Delete expired calls in batches, archive expired months, drop archives past grace."""
    settings = get_settings()
    at = parse_now(now)
    if dry_run:
        print_plan(retention.preview_retention(settings, now=at))
        return
    report = retention.run_retention(settings, now=at, progress=_progress)
    if isinstance(report, Skipped):
        fail("another retention run holds the lock; nothing done")
    print_report(report)
    if report.errors:
        raise typer.Exit(1)


def _progress(**counts: Any) -> None:
    if counts.get("phase") == "delete" and counts.get("batches", 0) % 20 == 0:
        _say(f"... {counts['calls_deleted']:,} call(s) deleted")
