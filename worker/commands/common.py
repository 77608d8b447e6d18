"""Helpers the CLI commands share: the console, clean failures, the ``--now`` option."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print one clear line and exit with ``code`` (no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def parse_now(value: str | None) -> datetime:
    """``--now`` as an aware datetime (a plain date means its midnight UTC); default: now."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            fail(f"--now {value!r} is not an ISO date or datetime (e.g. 2027-03-15)", code=2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if it were this ISO date or datetime (UTC)."),
]
