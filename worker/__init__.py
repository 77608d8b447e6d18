"""callstore's code, in rooms by audience. Start here.

Where things are
----------------
* The runtime's client — what a voice runtime installs (``pip install callstore``, no extra) and
  imports: ``worker.client`` (``from worker.client import CallRecorder``). It checks each record
  against the contract, keeps the call in a journal on local disk while it runs (recovered as
  ``interrupted`` if the process dies) and checkpoints it to the workers, hands it to Celery, and
  keeps it on local disk (spool, outbox) while the broker cannot take it.
* Where a call is validated: ``worker.calls.validation`` (against ``models.payload``, the
  contract). Where it is written: ``worker.calls.persist``, in the one transaction
  ``worker.calls.finalize`` opens; the task around it is ``tasks/calls.py``.
* Where a call that cannot be stored goes: ``worker.calls.dead_letters`` (``failed_payloads``).
* What a worker's main process does with a message before the pool runs it — refuse what is
  too deep, too large, undecodable, of the wrong shape or poison, keep it in the dead letters,
  bound decompression, hold messages while Redis refuses writes, keep what it took in an
  in-flight list until it is recorded (a worker killed in between loses nothing):
  ``worker.intake``. A call's payload crosses the main process undecoded, as its bytes
  (``worker.calls.raw_calls``, ``tasks/finalize_request.py``); the pool decodes it once.
* Beat's jobs: ``worker.maintenance`` (partitions, retention), ``worker.azure`` (the legacy
  migration), ``worker.consistency`` (the checks); their shells are in ``tasks/``, their
  schedule in ``beat_schedule.py``.
* What operators watch: ``worker.monitoring`` (Prometheus, canary, Flower); what they type:
  ``worker.cli`` and ``worker.commands`` (``callstore ...``).
* What the voice agent reads once its data lives in PostgreSQL (seed 000's repositories: a
  customer by phone or legacy id, tactics, the active prompt, a customer's calls):
  ``worker.repositories``; phone numbers are normalized by ``worker.phone_numbers``, the rule
  the migration applies too.
* Local tooling (embedded servers, demo, simulated and legacy data): ``worker.dev``.

The platform, at this level: ``settings`` (``ClientSettings`` for the runtime, ``Settings`` for
the workers), ``errors`` (the error tree), ``log``, ``db`` (engines, sessions, driver errors
translated into the tree), ``jobs`` (periodic jobs that never run twice at once), ``durable``
(files written to survive a crash), ``migrations`` (Alembic from Python), ``readahead``,
``celery_app`` and ``cli``.

Which way imports run (enforced by import contracts in ``pyproject.toml``)
---------------------------------------------------------------------------
* ``models`` imports nothing of ours; Alembic revisions import neither ``models`` nor ``worker``.
* ``worker.client`` imports only the light platform (settings, errors, log, durable) and
  ``models.payload``/``models.enums``: no database driver, no service, no worker code.
* Services (``calls``, ``maintenance``, ``azure``, ``consistency``, ``monitoring``,
  ``repositories``) import neither Celery nor typer/rich nor ``commands`` nor ``dev``; they
  take what they need (a ``send`` callable, settings, a connection) as arguments.
* Only the roots — ``tasks``, ``worker.celery_app``, ``worker.cli``, ``worker.commands`` —
  import Celery tasks. Production code never imports ``worker.dev``.
"""
