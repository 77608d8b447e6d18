"""``callstore demo``: the whole system on the embedded default, with simulated calls."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.commands.common import console, fail
from worker.dev import demo
from worker.dev.stack import StackError


def command(
    calls: Annotated[int, typer.Option("--calls", min=1, help="How many calls to simulate.")] = 200,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="Leave worker, beat, Flower and the metrics endpoint running until Ctrl-C.",
        ),
    ] = False,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the embedded servers keep their data.")
    ] = Path(".callstore"),
    concurrency: Annotated[
        int, typer.Option(min=1, max=1000, help="Hand-offs in flight at the same time, at most.")
    ] = 32,
    rate: Annotated[
        float, typer.Option(min=0.1, max=10_000, help="Calls ended per second.")
    ] = 40.0,
    flower_port: Annotated[int, typer.Option(min=1, max=65535)] = demo.FLOWER_PORT,
    metrics_port: Annotated[int, typer.Option(min=1, max=65535)] = demo.METRICS_PORT,
) -> None:
    """Start PostgreSQL, Redis, a worker, beat, Flower and the metrics endpoint; push simulated
    calls through ``CallRecorder``; show what was persisted. PostgreSQL and Redis keep running
    afterwards (``callstore stack down`` stops them)."""
    options = demo.DemoOptions(
        calls=calls,
        concurrency=concurrency,
        data_dir=data_dir,
        flower_port=flower_port,
        metrics_port=metrics_port,
    )
    try:
        system = demo.start_system(options, log=lambda line: console.print(f"[dim]{line}[/]"))
    except (StackError, RuntimeError) as error:
        fail(str(error))
    try:
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            handed = progress.add_task("handed off", total=calls)
            stored = progress.add_task("persisted", total=calls)
            run = demo.run_calls(
                options,
                system,
                on_handoff=lambda: progress.advance(handed),
                on_progress=lambda done, dead: progress.update(stored, completed=done + dead),
            )
        _report(run)
        if keep_running:
            console.print(
                f"\nworker, beat, Flower and metrics keep running; Flower: {run.flower_url} "
                f"(user:password {run.flower_credentials}), metrics: {run.metrics_url}. "
                "Ctrl-C to stop.",
                soft_wrap=True,
            )
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    finally:
        # A second Ctrl-C while the processes stop would leave them running without us; the
        # stop is bounded (worker/dev/processes.py), so it is not interruptible.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        system.stop()
        console.print(demo.servers_left_running(data_dir), highlight=False, soft_wrap=True)
    if run.lost or run.refused:
        raise typer.Exit(1)


def _report(run: demo.DemoRun) -> None:
    summary = Table(title="callstore demo", show_header=False, title_justify="left")
    for label, value in demo.summary_lines(run):
        style = "bold red" if label == "lost" and value != "0" else None
        summary.add_row(label, value, style=style)
    console.print(summary)
    rows = Table("table", "rows", title="persisted rows", title_justify="left")
    for table, count in run.rows.items():
        rows.add_row(table, f"{count:,}")
    console.print(rows)
    console.print(
        f"Flower: {run.flower_url}  (basic auth {run.flower_credentials})", soft_wrap=True
    )
    console.print(f"Metrics: {run.metrics_url}", soft_wrap=True)
    console.print("Try a query:", soft_wrap=True)
    console.print(
        f"  {demo.psql_path()} '{run.database_url}' -c '{demo.example_query()}'",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
