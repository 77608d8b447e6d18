"""``callstore``: the operator's command line. Each group lives in ``worker/commands/``.

Commands let callstore's errors (``worker.errors``) through; ``main`` turns each into one line an
operator can act on, with no traceback: exit status 2 for a wrong setting (the line every entry
point prints, see ``worker.settings``), 1 for the rest (an outage, a refused operation).
"""

from __future__ import annotations

import typer
from rich.markup import escape

from worker.commands import (
    check,
    dead_letter,
    demo,
    metrics,
    migrate,
    partitions,
    queue,
    retention,
    spool,
    stack,
)
from worker.commands.common import err_console
from worker.errors import CallstoreError, ConfigurationError

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
app.add_typer(queue.app, name="queue")
app.add_typer(partitions.app, name="partitions")
app.add_typer(retention.app, name="retention")
app.add_typer(metrics.app, name="metrics")
app.add_typer(migrate.app, name="migrate")
app.command("demo")(demo.command)
app.command("check")(check.command)


def main() -> None:
    try:
        app()
    except CallstoreError as error:
        # A wrong setting reads as it does from every entry point (``worker.settings``).
        wrong_setting = isinstance(error, ConfigurationError)
        prefix = "callstore:" if wrong_setting else "error:"
        err_console.print(
            f"[bold red]{prefix}[/] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        raise SystemExit(2 if wrong_setting else 1) from None
