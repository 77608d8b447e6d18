"""``callstore metrics serve``: the Prometheus endpoint beside Flower's own."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from worker.commands.common import console, fail
from worker.log import configure_logging
from worker.monitoring import prometheus as metrics
from worker.settings import get_settings

app = typer.Typer(help="Prometheus metrics: queues, dead letters, spool, partitions, canary.")

DEFAULT_PORT = 9808


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    address: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 in a container).")
    ] = "127.0.0.1",
) -> None:
    """Serve /metrics until SIGTERM or Ctrl-C; every scrape reads live values."""
    settings = get_settings()
    configure_logging(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"serving metrics on http://{address}:{port}/metrics", highlight=False)
    try:
        metrics.serve(settings, port=port, address=address, stop=stop)
    except OSError as error:
        fail(f"cannot listen on {address}:{port}: {error}")
