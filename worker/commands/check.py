"""``callstore check``: prove the store is whole, or say exactly what is not.

Exit status: 0 clean, 1 discrepancies found, 2 the check could not run (with the reason).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from worker.client.publisher import get_publisher
from worker.commands.common import NowOption, console, err_console, parse_now
from worker.consistency import repair as repairs
from worker.consistency.runner import Report, history, run_checks
from worker.errors import CallstoreError
from worker.settings import Settings, get_settings

CLEAN, FOUND, FAILED = 0, 1, 2


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Examine what changed since this ISO time.")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Examine everything, not just changes.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these checks (repeatable).")
    ] = None,
    show_history: Annotated[bool, typer.Option("--history", help="List past reports.")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Fix the repairable discrepancies (see --dry-run).")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run/--no-dry-run", help="With --repair: only print what would change."),
    ] = True,
    now: NowOption = None,
) -> None:
    """Check the call store's invariants (and Azure against PostgreSQL while the migration runs)."""
    settings = get_settings()
    if show_history:
        _history(settings, as_json)
        return
    as_of = parse_now(now)
    since_at = parse_now(since) if since else None
    try:
        report = run_checks(settings, now=as_of, since=since_at, full=full, names=only)
    except (CallstoreError, ValueError, OSError) as error:
        err_console.print(f"[bold red]check could not run:[/] {error}", highlight=False)
        raise typer.Exit(FAILED) from error
    if repair:
        report = _repair(settings, report, dry_run=dry_run, as_of=as_of, names=only)
    _print(report, as_json)
    raise typer.Exit(CLEAN if report.clean else FOUND)


def _repair(
    settings: Settings, report: Report, *, dry_run: bool, as_of: datetime, names: list[str] | None
) -> Report:
    actions = repairs.plan(report.discrepancies)
    if not actions:
        err_console.print("nothing repairable", highlight=False)
        return report
    for action in actions:
        err_console.print(
            f"{'would ' if dry_run else ''}repair: {action.description}",
            highlight=False,
            soft_wrap=True,
        )
    if dry_run:
        err_console.print("dry run: nothing changed (use --repair --no-dry-run to apply)")
        return report
    publisher = get_publisher(settings)
    for line in repairs.apply(
        settings, actions, send=lambda t, q, a: publisher.send(t, args=a, queue=q)
    ):
        err_console.print(f"repaired: {line}", highlight=False, soft_wrap=True)
    # Prove it: the same checks again, over everything they examined before.
    return run_checks(
        settings, now=as_of, since=report.since, full=report.since is None, names=names
    )


def _print(report: Report, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
        return
    scope = f"changes since {report.since.isoformat()}" if report.since else "everything"
    console.print(f"checked {scope} ({', '.join(report.checks)})", highlight=False, soft_wrap=True)
    if skipped := report.stats.get("azure", {}).get("skipped"):
        console.print(f"[dim]{skipped}[/]", highlight=False)
    if report.clean:
        console.print("[green]clean[/]: no discrepancies")
        return
    table = Table(
        "check", "class", "where", "detail", title=f"{len(report.discrepancies)} discrepancies"
    )
    for d in report.discrepancies:
        where = ", ".join(f"{k}={v}" for k, v in d.keys.items() if v is not None)
        table.add_row(d.check, d.kind, where, d.detail + (" (repairable)" if d.repairable else ""))
    console.print(table)


def _history(settings: Settings, as_json: bool) -> None:
    rows: list[dict[str, Any]] = history(settings)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table("id", "started", "status", "scope", "discrepancies", "by class")
    for r in rows:
        table.add_row(
            r["id"],
            r["started_at"][:19],
            r["status"],
            r["scope"][:30],
            str(r["discrepancies"]),
            json.dumps(r["by_class"]),
        )
    console.print(table)
