"""``callstore``: the operator's command line. Each group lives in ``worker/commands/``."""

from __future__ import annotations

import typer

from worker.commands import check, dead_letter, demo, partitions, retention, spool, stack

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
app.command("demo")(demo.command)
app.command("check")(check.command)


def main() -> None:
    app()
