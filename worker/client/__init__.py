"""The runtime client: what the voice runtime imports to hand a finished call to the workers.

In the order a call flows through it:

* ``recorder`` — ``CallRecorder`` records the call in memory; ``finalize_and_write`` builds the
  payload and hands it over;
* ``entries`` — each recording call's arguments checked against the payload contract at the call
  site (refused by name, or normalized where refusing would lose data); ``calldata`` — the call's
  data and the payload built from it;
* ``journal`` and ``keeper`` — the call's journal on local disk, written every
  ``CALLSTORE_JOURNAL_FLUSH_SECONDS`` by the process's keeper thread, locked by its live process;
  ``checkpoints`` — when a call in progress is handed off as an ``in_progress`` revision;
* ``delivery`` — the hand-off: publish, or spool when the broker is down; the outbox record, the
  background drainer and the start announcements; ``drain`` for the CLI and beat, which also runs
  ``recovery``: the journals of dead runtime processes handed off as ``interrupted`` calls;
* ``encoding`` — the payload as JSON bytes, for the broker, the spool and the journal alike;
* ``publisher`` — sends a task by name to the broker (a client-only Celery app);
* ``spool`` — the local directory of calls the broker could not take, and the outbox of those
  it did, until they are settled;
* ``queues`` — the Celery queues and the Redis client for a broker URL;
* ``settlement`` — a worker marks a call settled; the outbox forgets it, or publishes it again.

Settings come from ``worker.settings.ClientSettings`` (``get_client_settings``), which needs no
database. The client imports no database driver and no worker code; the import contracts in
pyproject.toml (run by tests/unit/test_import_contracts.py) keep it so. ``CallRecorder`` is
exported lazily, so the workers can import ``worker.client.settlement`` or ``queues`` without
loading the recorder; and the recorder loads Celery, kombu, redis and structlog only in the
background thread of its first hand-off.
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
