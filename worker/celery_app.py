"""The Celery application of every callstore worker and of beat: ``worker.celery_app:app``.

Delivery is at least once and persisting is idempotent, which together give exactly-once in
effect. The settings below are the ones that guarantee it:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its
  task finished, and a killed pool process puts it back, so no crash loses a call;
* ``worker_prefetch_multiplier = 1``: a worker holds no more unstarted messages than it runs,
  so a killed worker strands at most one message per process;
* the Redis ``visibility_timeout`` (``CALLSTORE_BROKER_VISIBILITY_TIMEOUT``, default 900 s) is
  how long an unacknowledged message stays invisible before Redis hands it to another worker.
  It must exceed the longest task so a running task is not delivered twice: finalize takes
  well under a second, and every maintenance, migration and check task works in batches under a
  time budget of at most 300 s (docs/operations.md). Retry countdowns are capped at
  ``CALLSTORE_FINALIZE_RETRY_BACKOFF_MAX`` (60 s), far below it, for the same reason. It is
  also how long the messages of a worker killed outright (SIGKILL of the main process, a lost
  host) wait before another worker takes them; a killed *pool process* is handled at once by
  ``task_reject_on_worker_lost``. Redelivery is harmless either way: persisting is idempotent;
* JSON is the only accepted content type: a pickled message is refused, never executed;
* ``worker_consumer``: the main process looks at every ``calls.finalize`` message before Celery
  decodes or pickles it, and dead-letters, with the bytes that arrived, what it refuses and
  what Celery would drop (``worker.intake``); its Redis transport takes a message into an
  in-flight list of the worker's consumer and records it out of it in one step (a worker
  killed in between loses nothing: the list is given back once its liveness key expires), keeps
  messages when Redis refuses writes, and decompression stops at ``CALLSTORE_MAX_PAYLOAD_BYTES``.

No database engine exists at import time; each pool process makes its own on first use and
disposes it on fork and shutdown.

Around every task, ``task_id``, ``task`` and (for a call) ``call_id`` are bound to the log
context, so every line the task writes carries them. Every message this app sends (retries
included) shows ``<call ID revision N>`` or a count instead of its arguments, so no call
content reaches a log line, a task event or Flower. Loaded by ``celery ... flower``, the app
configures Flower from the settings first (``worker/monitoring/flower.py``).
"""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from typing import Any

import click
import structlog
from celery import Celery, Task, signals
from kombu import Queue  # type: ignore[attr-defined]

import beat_schedule
from tasks import TASK_MODULES
from worker.calls.dead_letters import call_id_of
from worker.client.publisher import arguments_repr, keywords_repr
from worker.client.queues import QUEUES
from worker.db import dispose_engine
from worker.intake import clients, compression, transport
from worker.log import configure_logging
from worker.monitoring.canary import CANARY_TASK, SENT_AT_HEADER
from worker.monitoring.flower import FlowerConfigError, configure_flower
from worker.settings import Settings, settings_or_exit

TASK_ROUTES = {
    # The canary goes through the finalize workers' queue: its round trip proves they consume.
    CANARY_TASK: {"queue": "calls"},
    "calls.*": {"queue": "calls"},
    "maintenance.*": {"queue": "maintenance"},
    "consistency.*": {"queue": "maintenance"},
    "migration.*": {"queue": "migration"},
}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Every Celery setting of the system, derived from our settings."""
    return {
        "broker_url": settings.broker_url.get_secret_value(),
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout,
            # Look for messages of dead workers every 10 s (kombu's default scans only every
            # 10th tick, i.e. every 100 s, on top of the visibility timeout).
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "health_check_interval": 10,
            # A message its worker died holding before recording it, this often, is
            # dead-lettered unread (worker.intake.inflight).
            "poison_deliveries": settings.poison_deliveries,
        },
        # Results are off for every task; the backend exists for the PROGRESS states of long
        # tasks (tasks/progress.py), kept a day.
        "result_backend": settings.broker_url.get_secret_value(),
        "task_ignore_result": True,
        "result_expires": 86_400,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # The consumer that refuses and dead-letters what Celery's would drop or die on.
        "worker_consumer": "worker.intake.consumer:CallstoreConsumer",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": settings.worker_max_tasks_per_child or None,
        "task_queues": tuple(Queue(name) for name in QUEUES),
        "task_default_queue": "calls",
        "task_routes": TASK_ROUTES,
        "task_create_missing_queues": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "beat_schedule": beat_schedule.BEAT_SCHEDULE,
        "timezone": "UTC",
        "enable_utc": True,
    }


class CallstoreCelery(Celery):  # type: ignore[misc]
    """The app: every message it sends (tasks, retries, beat's) shows no argument values.

    ``Task.apply_async``, ``Task.retry`` and beat all publish through ``send_task``.
    """

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if options.get("argsrepr") is None:
            options["argsrepr"] = arguments_repr(args)
        if options.get("kwargsrepr") is None:
            options["kwargsrepr"] = keywords_repr(kwargs)
        return super().send_task(name, args, kwargs, **options)


def _invoked_subcommand() -> str | None:
    """The ``celery`` sub-command loading this module (``worker``, ``beat``, ``flower``...)."""
    context = click.get_current_context(silent=True)
    return context.invoked_subcommand if context is not None else None


settings = settings_or_exit()
# Before any connection: Redis writes refused at its memory limit keep the message instead of
# stopping the worker, and no compressed message expands past the payload limit.
transport.install()
clients.install()
compression.install(settings.max_payload_bytes)
app = CallstoreCelery("callstore", include=list(TASK_MODULES))
app.conf.update(celery_config(settings))

if _invoked_subcommand() == "flower":
    configure_logging(settings)
    try:
        configure_flower(settings)
    except FlowerConfigError as error:
        sys.stderr.write(f"callstore: {error}\n")
        raise SystemExit(2) from None


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    configure_logging(settings_or_exit())


@signals.task_prerun.connect
def _bind_task_context(task_id: str, task: Task, args: Any = (), **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    context: dict[str, str] = {"task_id": task_id, "task": task.name}
    call_id = call_id_of(args[0]) if args else None
    if call_id is not None:
        context["call_id"] = str(call_id)
    structlog.contextvars.bind_contextvars(**context)


@signals.task_postrun.connect
def _clear_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@signals.before_task_publish.connect
def _stamp_canary(
    sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any
) -> None:
    """The canary's round trip starts when it is published (by beat)."""
    if sender == CANARY_TASK and headers is not None:
        headers.setdefault(SENT_AT_HEADER, datetime.now(UTC).isoformat())


@signals.worker_before_create_process.connect
def _freeze_heap_before_fork(**_: Any) -> None:
    """Everything alive in the main process now (the modules, the app) lives as long as the
    process: moved out of the collector's reach, a pool process's full collections no longer
    scan it (1.5 ms of CPU per call on the standard call, docs/benchmarks.md), and no
    collection in a pool process writes to the pages it shares with this one."""
    gc.freeze()


@signals.worker_process_init.connect
def _fresh_engine_after_fork(**_: Any) -> None:
    dispose_engine()


@signals.worker_process_shutdown.connect
def _close_engine(**_: Any) -> None:
    dispose_engine()
