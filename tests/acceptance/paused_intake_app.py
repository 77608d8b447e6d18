"""The workers' Celery app with a pause between taking a call off its queue and recording it as
unacknowledged: ``celery -A tests.acceptance.paused_intake_app``.

A worker killed in that window used to lose the call for good (kombu's Redis transport popped
it before recording it). The pause makes the window as wide as a test needs to SIGKILL the
worker inside it; nothing else of the worker changes.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import kombu.transport

from models.payload import TASK_NAME
from worker.celery_app import app
from worker.intake import transport

__all__ = ["app"]

#: What the worker prints once it holds a call it has not recorded (then it waits to be killed).
PAUSED = "paused between taking and recording"


class PausingQoS(transport.QoS):
    def append(self, message: Any, delivery_tag: Any) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        if headers.get("task") == TASK_NAME:
            sys.stdout.write(f"{PAUSED} {headers.get('id')}\n")
            sys.stdout.flush()
            time.sleep(3600)
        super().append(message, delivery_tag)


class PausingChannel(transport.Channel):
    QoS = PausingQoS


class PausingTransport(transport.Transport):
    Channel = PausingChannel


for _alias in ("redis", "rediss"):
    kombu.transport.TRANSPORT_ALIASES[_alias] = f"{__name__}:PausingTransport"
    kombu.transport._transport_cache.pop(_alias, None)
