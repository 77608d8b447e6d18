"""``callstore stack up|down|status``: the embedded PostgreSQL + Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worker.commands.common import console, fail
from worker.dev import stack
from worker.settings import DEFAULT_STACK_ENV

app = typer.Typer(help="Run the embedded PostgreSQL (pgvector) and Redis from one directory.")

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where the servers keep their data and sockets.")
]
DEFAULT_DIR = DEFAULT_STACK_ENV.parent


def _server_lines(info: stack.StackInfo) -> None:
    """One line per server; soft_wrap keeps each URL on one line however narrow the terminal,
    so it can be copied whole."""
    for name, pid, url in (
        ("PostgreSQL", info.postgres_pid, info.database_url),
        ("Redis", info.redis_pid, info.broker_url),
    ):
        state = f"running (pid {pid})" if pid else "stopped"
        console.print(f"{name:<11} {state:<20} {url or '-'}", highlight=False, soft_wrap=True)


@app.command("up")
def up(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Start both servers (or reuse running ones), migrate, and write DIR/stack.env."""
    try:
        info = stack.up(data_dir)
    except stack.StackError as error:
        fail(str(error))
    _server_lines(info)
    console.print(f"wrote {info.env_file}", highlight=False, soft_wrap=True)
    if info.env_file != (Path.cwd() / DEFAULT_STACK_ENV).resolve():
        # Settings read ./.callstore/stack.env by themselves; any other DIR must be loaded.
        console.print(
            f"to use it from here: set -a; . {info.env_file}; set +a",
            highlight=False,
            soft_wrap=True,
        )


@app.command("down")
def down(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Stop both servers; the data stays in DIR for the next ``up``."""
    try:
        stack.down(data_dir)
    except stack.StackError as error:
        fail(str(error))
    console.print(
        f"stopped PostgreSQL and Redis; their data stays in {stack.paths(data_dir).data_dir}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("status")
def status(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Whether each server runs, and the URLs in DIR/stack.env; exits 1 unless both run."""
    info = stack.info(stack.paths(data_dir))
    _server_lines(info)
    if not (info.postgres_pid and info.redis_pid):
        raise typer.Exit(1)
