"""The runtime client: what the voice runtime imports to hand a finished call to the workers.

In the order a call flows through it:

* ``recorder`` — ``CallRecorder`` buffers the call in memory; ``finalize_and_write`` builds the
  payload and hands it over;
* ``delivery`` — the hand-off: publish, or spool when the broker is down; the outbox record, the
  background drainer and the start announcements; ``drain`` for the CLI and beat;
* ``encoding`` — the payload as JSON bytes, for the broker and the spool alike;
* ``publisher`` — sends a task by name to the broker (a client-only Celery app);
* ``spool`` — the local directory of calls the broker could not take, and the outbox of those
  it did, until they are settled;
* ``queues`` — the Celery queues and the Redis client for a broker URL;
* ``settlement`` — a worker marks a call settled; the outbox forgets it, or publishes it again.

Settings come from ``worker.settings.ClientSettings`` (``get_client_settings``), which needs no
database. The client imports no database driver and no worker code; the import contracts in
pyproject.toml (run by tests/unit/test_import_contracts.py) keep it so. ``CallRecorder`` is
exported lazily, so the workers can import ``worker.client.settlement`` or ``queues`` without
loading Celery's client app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.client.recorder import CallRecorder

__all__ = ["CallRecorder"]


def __getattr__(name: str) -> Any:
    """``CallRecorder`` on first use (PEP 562), importing the recorder and the publisher then."""
    if name == "CallRecorder":
        from worker.client.recorder import CallRecorder

        return CallRecorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
