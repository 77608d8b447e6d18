"""``callstore stack up|down|status``: the embedded PostgreSQL + Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from worker import stack
from worker.commands.common import console, fail

app = typer.Typer(help="Run the embedded PostgreSQL (pgvector) and Redis from one directory.")

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="Where the servers keep their data and sockets.")
]
DEFAULT_DIR = Path(".callstore")


@app.command("up")
def up(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Start both servers (or reuse running ones), migrate, and write DIR/stack.env."""
    try:
        info = stack.up(data_dir)
    except stack.StackError as error:
        fail(str(error))
    console.print(f"PostgreSQL  pid {info.postgres_pid}  {info.database_url}", highlight=False)
    console.print(f"Redis       pid {info.redis_pid}  {info.broker_url}", highlight=False)
    console.print(f"wrote {info.env_file}", highlight=False)


@app.command("down")
def down(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Stop both servers; the data stays in DIR for the next ``up``."""
    try:
        stack.down(data_dir)
    except stack.StackError as error:
        fail(str(error))
    console.print("stopped")


@app.command("status")
def status(data_dir: DataDir = DEFAULT_DIR) -> None:
    """Whether each server runs, and the URLs in DIR/stack.env."""
    info = stack.info(stack.paths(data_dir))
    pg = f"running (pid {info.postgres_pid})" if info.postgres_pid else "stopped"
    rd = f"running (pid {info.redis_pid})" if info.redis_pid else "stopped"
    console.print(f"PostgreSQL  {pg}  {info.database_url}", highlight=False)
    console.print(f"Redis       {rd}  {info.broker_url}", highlight=False)
    if not (info.postgres_pid and info.redis_pid):
        raise typer.Exit(1)
