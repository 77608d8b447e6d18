"""Sending tasks by name, for processes that are not workers (the runtime, the CLI).

The call runtime must not import worker code or database drivers, so it does not use
``worker.celery_app``: this module builds a client-only Celery app with the same JSON-only
serialization and publishes by task name. Broker failures are retried briefly (bounded by
``CALLSTORE_PUBLISH_TIMEOUT_SECONDS``) and then raised as ``BrokerUnavailable`` so the caller can
fall back to its spool instead of hanging a call (``worker.client.delivery``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from kombu.serialization import registry
from kombu.utils import json as kombu_json

from worker.client.encoding import encode_json
from worker.errors import BrokerUnavailable
from worker.settings import ClientSettings

#: The serializer producers use: standard JSON (``application/json``, what every worker accepts
#: and decodes with kombu's own decoder), encoded by pydantic-core, which is about five times
#: faster than the standard library on a call payload — most of the hand-off time of a large call.
SERIALIZER = "callstore-json"


def _encode(value: Any) -> str:
    return encode_json(value).decode()


registry.register(  # type: ignore[no-untyped-call]
    SERIALIZER,
    _encode,
    kombu_json.loads,
    content_type="application/json",
    content_encoding="utf-8",
)


def payload_repr(payload: Mapping[str, Any]) -> str:
    """How a call payload appears in logs and Flower: its identity, never its content."""
    if "revision" not in payload:  # a start announcement
        return f"<call {payload.get('call_id')} started>"
    return f"<call {payload.get('call_id')} revision {payload.get('revision')}>"


def arguments_repr(args: Sequence[Any] | None) -> str:
    """What logs, task events and Flower show instead of a task's positional arguments.

    Celery's default is a repr of the arguments themselves, which for a call payload holds
    transcripts and phone numbers; every message we send carries this instead.
    """
    if not args:
        return "()"
    first = args[0]
    if isinstance(first, Mapping) and "call_id" in first:
        shown = payload_repr(first)
        return shown if len(args) == 1 else f"{shown} and {len(args) - 1} more argument(s)"
    if all(isinstance(arg, int | float | bool) or arg is None for arg in args):
        return repr(tuple(args))
    return f"<{len(args)} argument(s)>"


def keywords_repr(kwargs: Mapping[str, Any] | None) -> str:
    """The keyword arguments' names (numbers shown), never other values."""
    if not kwargs:
        return "{}"
    shown = {
        key: value if isinstance(value, int | float | bool) or value is None else "..."
        for key, value in kwargs.items()
    }
    return repr(shown)


def client_config(settings: ClientSettings) -> dict[str, Any]:
    """Celery settings shared by every producer: JSON only, bounded socket waits."""
    timeout = settings.publish_timeout_seconds
    return {
        "broker_url": settings.broker_url.get_secret_value(),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "broker_transport_options": {
            "visibility_timeout": settings.broker_visibility_timeout,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
        "broker_connection_timeout": timeout,
        "broker_connection_retry_on_startup": False,
        "task_default_queue": "calls",
    }


class Publisher:
    """A thread-safe producer of tasks by name. One per process is enough."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._app = self._new_app()
        timeout = settings.publish_timeout_seconds
        # kombu's retry: a few quick reconnects, within the publish timeout overall.
        self._retry_policy = {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": min(0.2, timeout / 4),
            "interval_max": min(0.5, timeout / 2),
        }

    def _new_app(self) -> Celery:
        app = Celery("callstore-client", set_as_current=False)
        app.conf.update(client_config(self._settings))
        return app

    def _reset(self) -> None:
        """Drop every pooled connection after a failure: kombu can leave a half-closed channel
        in its pool after a timeout, and the next publish must start from a clean one."""
        with self._lock:
            broken, self._app = self._app, self._new_app()
        with contextlib.suppress(Exception):
            broken.close()

    def send(
        self,
        task_name: str,
        *,
        args: list[Any],
        queue: str,
        compress: bool = False,
        task_id: str | None = None,
        argsrepr: str | None = None,
    ) -> str:
        """Publish ``task_name(*args)`` on ``queue``; return the task id or raise ``BrokerUnavailable``.

        ``argsrepr`` is what logs, events and Flower show instead of the arguments: a call
        payload carries transcripts and phone numbers, which must never reach a log line.
        """
        app = self._app
        try:
            result = app.send_task(
                task_name,
                args=args,
                queue=queue,
                task_id=task_id,
                compression="zlib" if compress else None,
                serializer=SERIALIZER,
                retry=True,
                retry_policy=self._retry_policy,
                argsrepr=argsrepr if argsrepr is not None else arguments_repr(args),
                kwargsrepr="{}",
            )
        except Exception as error:
            # Whatever went wrong (a broker error, a timeout, a fault inside kombu), the message
            # was not safely accepted: the caller keeps it (spool, queue) instead of losing it.
            self._reset()
            raise BrokerUnavailable(
                f"broker did not accept {task_name}: {type(error).__name__}: {error}"
            ) from error
        return str(result.id)

    def close(self) -> None:
        self._app.close()


_publisher: Publisher | None = None
_lock = threading.Lock()


def get_publisher(settings: ClientSettings) -> Publisher:
    """The process's publisher for ``settings`` (rebuilt if the settings object changes)."""
    global _publisher
    with _lock:
        if _publisher is None or _publisher._settings is not settings:
            _publisher = Publisher(settings)
        return _publisher
