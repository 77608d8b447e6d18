"""``callstore spool status|flush``: calls waiting on this host for the broker, and the journals
of calls in progress (live) or of runtime processes that died mid-call (orphaned).

Runtime-safe: it needs only the client's settings and imports nothing of the worker side, so
a runtime host with the light install (``pip install callstore``) can run it.
"""

from __future__ import annotations

import typer

from worker.client.delivery import publisher_send
from worker.client.drain import drain
from worker.client.journal import list_journals
from worker.client.publisher import get_publisher
from worker.client.spool import Spool
from worker.commands.common import console, fail
from worker.settings import get_client_settings

app = typer.Typer(help="Inspect and re-enqueue calls spooled while the broker was unreachable.")


@app.command("status")
def status() -> None:
    """How many calls are spooled and how old the oldest is; every call journal, live or
    orphaned, with its age."""
    settings = get_client_settings()
    stats = Spool(settings.spool_dir).stats()
    age = f"{stats.oldest_age_seconds:.0f}s" if stats.oldest_age_seconds is not None else "-"
    journals = list_journals(settings.spool_dir)
    orphaned = sum(not j.live for j in journals)
    console.print(
        f"spool {settings.spool_dir}: {stats.files} file(s), oldest {age}, "
        f"{stats.corrupt} set aside as corrupt; {stats.unsettled} published call(s) not yet "
        f"settled by a worker; {len(journals)} call journal(s): {len(journals) - orphaned} live, "
        f"{orphaned} orphaned",
        highlight=False,
    )
    for journal in journals:
        state = "live" if journal.live else "orphaned"
        console.print(
            f"  journal {journal.call_id} {state} age {journal.age_seconds:.0f}s "
            f"({journal.path.name})",
            highlight=False,
        )


@app.command("flush")
def flush() -> None:
    """Recover the calls of orphaned journals, re-enqueue every spooled call (oldest first) and
    reconcile the outbox of published calls; exits 1 if the broker is still down."""
    settings = get_client_settings()
    drained = drain(settings, send=publisher_send(get_publisher(settings)))
    result, outbox, recovered = drained.flushed, drained.reconciled, drained.recovered
    console.print(
        f"recovered {recovered.recovered} interrupted call(s) from orphaned journals "
        f"({recovered.spooled} spooled, {recovered.damaged} with a damaged tail dropped, "
        f"{recovered.corrupt} unreadable set aside, {recovered.live} live left alone); "
        f"re-enqueued {result.sent}, left {result.remaining}, locked by another flusher "
        f"{result.skipped_locked}, set aside as corrupt {result.corrupt}; outbox: "
        f"{outbox.settled} settled, {outbox.redelivered} published again, {outbox.waiting} waiting",
        highlight=False,
    )
    if result.broker_error or outbox.broker_error or recovered.broker_error:
        fail(
            "broker still unavailable: "
            f"{result.broker_error or outbox.broker_error or recovered.broker_error}"
        )
