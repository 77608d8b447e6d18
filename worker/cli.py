"""``callstore``: the operator's command line. Each group lives in ``worker/commands/``.

Groups are imported when they are used, not when ``callstore`` starts: a runtime host with the
light install (``pip install callstore``, no worker extra) runs ``callstore spool status|flush``
without the database side, and any other command there says which extra it needs. The import
contracts in pyproject.toml keep this module and the spool group free of the worker side.

Commands let callstore's errors (``worker.errors``) through; ``main`` turns each into one line an
operator can act on, with no traceback: exit status 2 for a wrong setting (the line every entry
point prints, see ``worker.settings``), 1 for the rest (an outage, a refused operation).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from worker.commands.common import err_console
from worker.errors import CallstoreError, ConfigurationError

#: Each command by name: its module, and the attribute there (a ``typer.Typer`` for a group,
#: a function for a single command). Groups first, then the two single commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "stack": ("worker.commands.stack", "app"),
    "spool": ("worker.commands.spool", "app"),
    "dead-letter": ("worker.commands.dead_letter", "app"),
    "queue": ("worker.commands.queue", "app"),
    "partitions": ("worker.commands.partitions", "app"),
    "retention": ("worker.commands.retention", "app"),
    "metrics": ("worker.commands.metrics", "app"),
    "migrate": ("worker.commands.migrate", "app"),
    "demo": ("worker.commands.demo", "command"),
    "check": ("worker.commands.check", "command"),
}

#: What each command needs beyond the light install, for the message when it is missing.
EXTRA_FOR = {"stack": "embedded", "demo": "embedded", "migrate": "azure"}


def _load(name: str) -> Any:
    """The click command (typer's own click) for ``name``."""
    module_name, attribute = COMMANDS[name]
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except ModuleNotFoundError as missing:
        return _unavailable(name, missing)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name)(target)
    command = typer.main.get_command(single)
    command.name = name
    return command


def _unavailable(name: str, missing: ModuleNotFoundError) -> TyperCommand:
    """A stand-in for a command whose side is not installed on this host."""
    extra = EXTRA_FOR.get(name, "worker")
    advice = f"`callstore {name}` needs the {extra} extra: pip install 'callstore[{extra}]'"

    def explain() -> None:
        err_console.print(f"[bold red]error:[/] {escape(advice)} ({missing})", highlight=False)
        raise SystemExit(2)

    return TyperCommand(
        name,
        callback=explain,
        help=f"(not installed here) {advice}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


class LazyGroup(TyperGroup):
    """The top-level group: its commands are ``COMMANDS``, imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        return _load(cmd_name)


app = typer.Typer(
    name="callstore",
    help="Durable call data for the voice runtime: workers, maintenance and operations.",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _callstore() -> None:
    """Durable call data for the voice runtime: workers, maintenance and operations."""


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
