"""``callstore spool status|flush``: calls waiting on this host for the broker."""

from __future__ import annotations

import typer

from worker.client.delivery import publisher_send
from worker.client.drain import drain
from worker.client.publisher import get_publisher
from worker.client.spool import Spool
from worker.commands.common import console, fail
from worker.settings import get_settings

app = typer.Typer(help="Inspect and re-enqueue calls spooled while the broker was unreachable.")


@app.command("status")
def status() -> None:
    """How many calls are spooled and how old the oldest is."""
    settings = get_settings()
    stats = Spool(settings.spool_dir).stats()
    age = f"{stats.oldest_age_seconds:.0f}s" if stats.oldest_age_seconds is not None else "-"
    console.print(
        f"spool {settings.spool_dir}: {stats.files} file(s), oldest {age}, "
        f"{stats.corrupt} set aside as corrupt; {stats.unsettled} published call(s) not yet "
        "settled by a worker",
        highlight=False,
    )


@app.command("flush")
def flush() -> None:
    """Re-enqueue every spooled call (oldest first) and reconcile the outbox of published calls;
    exits 1 if the broker is still down."""
    settings = get_settings()
    drained = drain(settings, send=publisher_send(get_publisher(settings)))
    result, outbox = drained.flushed, drained.reconciled
    console.print(
        f"re-enqueued {result.sent}, left {result.remaining}, locked by another flusher "
        f"{result.skipped_locked}, set aside as corrupt {result.corrupt}; outbox: "
        f"{outbox.settled} settled, {outbox.redelivered} published again, {outbox.waiting} waiting",
        highlight=False,
    )
    if result.broker_error or outbox.broker_error:
        fail(f"broker still unavailable: {result.broker_error or outbox.broker_error}")
