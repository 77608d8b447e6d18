"""``callstore``: the operator's command line. Each group lives in ``worker/commands/``."""

from __future__ import annotations

import typer

from worker.commands import (
    check,
    dead_letter,
    demo,
    metrics,
    migrate,
    partitions,
    retention,
    spool,
    stack,
)
from worker.commands.common import err_console
from worker.errors import BrokerUnavailable, DatabaseUnavailable

app = typer.Typer(
    name="callstore",
    help="Durable call data for the voice runtime: workers, maintenance and operations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(spool.app, name="spool")
app.add_typer(dead_letter.app, name="dead-letter")
app.add_typer(partitions.app, name="partitions")
app.add_typer(retention.app, name="retention")
app.add_typer(metrics.app, name="metrics")
app.add_typer(migrate.app, name="migrate")
app.command("demo")(demo.command)
app.command("check")(check.command)


def main() -> None:
    try:
        app()
    except (DatabaseUnavailable, BrokerUnavailable) as error:
        # An outage, not a bug: one line an operator can act on, no traceback.
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
