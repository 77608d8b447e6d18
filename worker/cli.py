"""``callstore``: the operator's command line. Each group lives in ``worker/commands/``."""

from __future__ import annotations

import typer

from worker.commands import dead_letter, migrate, spool, stack

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
app.add_typer(migrate.app, name="migrate")


def main() -> None:
    app()
