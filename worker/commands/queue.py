"""``callstore queue list|move``: the messages waiting in a queue, and setting one aside."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from worker.calls import queue_moves
from worker.calls.messages import call_id_in
from worker.client.queues import QUEUES, redis_client, waiting_messages
from worker.commands.common import console, fail
from worker.settings import get_settings

app = typer.Typer(help="Inspect a queue and move a message from it to the dead letters.")


def _queue(name: str) -> str:
    if name not in QUEUES:
        fail(f"{name!r} is not a queue; the queues are {', '.join(QUEUES)}", code=2)
    return name


@app.command("list")
def list_(
    queue: Annotated[str, typer.Argument(help="calls, maintenance or migration")] = "calls",
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
) -> None:
    """The messages waiting in QUEUE, the next one a worker takes first."""
    client = redis_client(get_settings().broker_url.get_secret_value())
    table = Table("#", "task id", "task", "retries", "bytes", "call_id")
    shown = 0
    for message in waiting_messages(client, _queue(queue)):
        if shown == limit:
            break
        shown += 1
        compressed = " (compressed)" if message.compression else ""
        table.add_row(
            str(message.position),
            message.task_id or "-",
            message.task_name or "-",
            "-" if message.retries is None else str(message.retries),
            f"{len(message.body)}{compressed}",
            str(call_id_in(message.body) or "-"),
        )
    console.print(table)
    console.print(f"{shown} message(s) shown", highlight=False)


@app.command("move")
def move(
    queue: Annotated[str, typer.Argument(help="calls, maintenance or migration")],
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID", help="from 'callstore queue list'")],
    reason: Annotated[str, typer.Option(help="Why, kept with the dead letter.")] = "by hand",
) -> None:
    """Move the message TASK_ID out of QUEUE into the dead letters, its body kept as it was."""
    client = redis_client(get_settings().broker_url.get_secret_value())
    message = queue_moves.find(client, _queue(queue), task_id)
    if message is None:
        fail(f"no message {task_id} waits in {queue} (a worker may hold it already)")
    moved = queue_moves.move_to_dead_letters(client, message, reason=reason)
    if not moved.removed:
        fail(
            f"a worker took {task_id} before it could be moved; dead letter"
            f" {moved.dead_letter_id} is marked discarded"
        )
    console.print(
        f"moved {task_id} from {queue} to dead letter {moved.dead_letter_id}", highlight=False
    )
