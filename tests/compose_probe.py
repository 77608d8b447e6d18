"""Checks the commands of docker-compose.yml against the installed project, in a fresh process.

``tests/acceptance/test_compose_commands.py`` runs ``python -m tests.compose_probe`` with the
environment compose gives the services and a JSON object ``{service: argv}`` on stdin. The
probe imports the Celery app exactly as ``celery -A`` does in the container, parses every
command line with the program's own parser (each command of an ``sh -c "a && b"`` line), and
prints a JSON report: an error (or null) per service, the queues of the app, the queue each
registered task and beat entry is routed to. A fresh process keeps the app's import-time
settings and Flower's global options away from the test session.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _app_module(argv: list[str]) -> str | None:
    for flag in ("-A", "--app"):
        if flag in argv:
            return argv[argv.index(flag) + 1]
    return None


def _subcommand(argv: list[str]) -> tuple[str, list[str]]:
    """The celery subcommand and the arguments after it (``-A X`` is the only global option)."""
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("-A", "--app"):
            rest.pop(0)
    if not rest:
        raise ValueError("no celery subcommand")
    return rest[0], rest[1:]


def _queues_option(args: list[str]) -> list[str]:
    for index, arg in enumerate(args):
        if arg in ("-Q", "--queues"):
            return args[index + 1].split(",")
        if arg.startswith("--queues="):
            return arg.split("=", 1)[1].split(",")
    return []


def check_celery(argv: list[str]) -> str | None:
    from celery.bin.celery import celery as celery_cli

    module = _app_module(argv)
    if module is None:
        return "no -A/--app: the command would not load worker.celery_app"
    app = importlib.import_module(module).app
    name, args = _subcommand(argv)
    if name not in celery_cli.commands:
        return f"celery has no command {name!r}"
    queues = {queue.name for queue in app.conf.task_queues}
    if name == "worker":
        unknown = set(_queues_option(args)) - queues
        if unknown:
            return f"queues {sorted(unknown)} are not declared by the app"
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            celery_cli.main(args=[*argv, "--help"], prog_name="celery", standalone_mode=False)
    except click.ClickException as error:
        return f"celery refuses the command line: {error.format_message()}"
    if name == "flower":
        return _check_flower(args)
    return None


def _check_flower(args: list[str]) -> str | None:
    """Flower hands its options to tornado, so parse them the way Flower does."""
    from flower.options import options
    from tornado.options import Error

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # tornado prints its help on errors
            options.parse_command_line(["flower", *args], final=False)
    except Error as error:
        return f"flower refuses the command line: {error}"
    return None


def check_alembic(argv: list[str]) -> str | None:
    from alembic.config import CommandLine
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from worker.migrations import alembic_config

    if not (PROJECT_ROOT / "alembic.ini").is_file():
        return "alembic.ini is missing from the project root (the image's working directory)"
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parsed = CommandLine(prog="alembic").parser.parse_args(argv)
    except SystemExit:
        return f"alembic refuses the command line {argv}"
    revision = getattr(parsed, "revision", None)
    if revision is not None:
        script = ScriptDirectory.from_config(alembic_config())
        try:
            script.get_revisions(revision)
        except CommandError as error:
            return f"alembic cannot resolve {revision!r}: {error}"
    return None


def check_callstore(argv: list[str]) -> str | None:
    """``callstore ...`` resolves through its command groups and takes its options: the same
    command line with ``--help`` is parsed up to the leaf command (unknown commands and options
    are refused) without running it."""
    from typer.testing import CliRunner

    from worker.cli import app

    result = CliRunner().invoke(app, [*argv, "--help"])
    if result.exit_code != 0:
        return f"callstore refuses {argv}: {result.output.strip()[-300:]}"
    return None


def command_lines(argv: list[str]) -> list[list[str]]:
    """The commands a service's command line runs: the line itself, or each command of
    ``sh -c SCRIPT``, where SCRIPT may only join plain commands with ``&&`` (each runs only if
    the one before it succeeded). Anything else a shell would interpret is refused
    (``ValueError``): the checks could not see what it runs."""
    if argv[:1] != ["sh"]:
        return [argv]
    if len(argv) != 3 or argv[1] != "-c":
        raise ValueError(f"a shell runs one script, as sh -c SCRIPT: {argv}")
    lexer = shlex.shlex(argv[2], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lines: list[list[str]] = [[]]
    for token in lexer:
        if token == "&&":
            lines.append([])
        elif set(token) <= set(lexer.punctuation_chars) or set(token) & set("$`"):
            raise ValueError(f"sh -c may only join commands with &&: {token!r} in {argv[2]!r}")
        else:
            lines[-1].append(token)
    if not all(lines):
        raise ValueError(f"an empty command in sh -c {argv[2]!r}")
    return lines


def check(argv: list[str]) -> str | None:
    try:
        lines = command_lines(argv)
    except ValueError as error:
        return str(error)
    for line in lines:
        found = _check_command(line)
        if found is not None:
            return found
    return None


def _check_command(argv: list[str]) -> str | None:
    program, *args = argv
    checks = {"celery": check_celery, "alembic": check_alembic, "callstore": check_callstore}
    if program not in checks:
        return f"no check for program {program!r}"
    try:
        return checks[program](args)
    except Exception as error:  # an import or lookup failure is the finding, not a crash
        return f"{type(error).__name__}: {error}"


def routes() -> dict[str, Any]:
    """The queue of every registered task and of every beat entry."""
    app = importlib.import_module("worker.celery_app").app
    app.loader.import_default_modules()
    tasks = {
        name: app.amqp.router.route({}, name)["queue"].name
        for name in sorted(app.tasks)
        if not name.startswith("celery.")
    }
    beat = {
        entry: spec.get("options", {}).get("queue") or tasks.get(spec["task"])
        for entry, spec in app.conf.beat_schedule.items()
    }
    return {
        "queues": sorted(queue.name for queue in app.conf.task_queues),
        "tasks": tasks,
        "beat": beat,
    }


def main() -> None:
    commands: dict[str, list[str]] = json.load(sys.stdin)
    report: dict[str, Any] = {
        "errors": {service: check(argv) for service, argv in commands.items()},
        **routes(),
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
