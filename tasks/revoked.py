"""A revoked ``calls.finalize`` keeps its call: the worker writes it to the dead letters before
the message is acknowledged.

Celery discards a revoked task's message in the worker's main process: when the message arrives
or its turn comes (``Request.revoked``), or when an operator terminates the task while it runs.
``Request._announce_revoked`` acknowledges the message and only then sends ``task_revoked``, so a
signal handler would come too late: a worker that dies in between has dropped the call. The
finalize task's requests are therefore of this class, which dead-letters the call first
(``MessageRevoked``, naming the task and why) and then lets Celery acknowledge.

When even the dead letter cannot be written, the revoke gives way to the promise: a request that
has not run yet runs after all (finalize keeps the call through an outage, and its retry carries
the same task id, so the next delivery is offered to the dead letters again); a terminated one is
put back on its queue, to be dead-lettered (or run) on its next delivery.
"""

from __future__ import annotations

from typing import Any

from celery.worker.request import Request

from worker.calls.finalize import dead_letter
from worker.calls.raw_calls import RawCall
from worker.client.settlement import settle
from worker.errors import MessageRevoked, PermanentError
from worker.log import get_logger
from worker.settings import get_settings

log = get_logger("callstore.tasks.revoked")


def message_call(args: Any, kwargs: Any) -> Any:
    """What a finalize message carries: its one payload, else its arguments as they came (a
    payload left undecoded is decoded here; one that does not decode stays the bytes that
    arrived)."""
    if isinstance(args, list | tuple) and len(args) == 1 and not kwargs:
        if isinstance(args[0], RawCall):
            try:
                return args[0].decode()
            except PermanentError:
                return args[0]
        return args[0]
    return {"args": args, "kwargs": kwargs}


def revoke_reason(task_id: str, reason: str, signum: Any) -> str:
    """Why the call is a dead letter, in the words of Celery's ``reason``."""
    if reason == "terminated":
        how = f"terminated while it ran (signal {signum}); it may or may not have been stored"
    elif reason == "expired":
        how = "expired (its expires time passed) before a worker ran it"
    else:
        how = "revoked (Flower or celery control revoke) before it ran"
    return f"calls.finalize {task_id} was {how}; replay the dead letter to store the call"


class KeepRevokedCall(Request):  # type: ignore[misc]
    """``calls.finalize``'s request: revoked, expired or terminated, its call is dead-lettered."""

    #: The dead letter could not be written: the request runs rather than drop its call.
    _not_kept = False

    def revoked(self) -> bool:
        if self._not_kept:
            return False
        return bool(super().revoked()) and not self._not_kept

    def _announce_revoked(self, reason: str, terminated: bool, signum: Any, expired: bool) -> None:
        raw = message_call(self.args, self.kwargs)
        try:
            kept = dead_letter(
                raw, MessageRevoked(revoke_reason(self.id, reason, signum)), task_id=self.id
            )
        except Exception as error:
            log.error(
                "revoked call could not be dead-lettered; it is kept instead",
                task_id=self.id,
                reason=reason,
                error_class=type(error).__name__,
                error=str(error)[:500],
            )
            if not terminated:
                self._not_kept = True
                return
            self.reject(requeue=True)
        else:
            log.warning(
                "revoked call dead-lettered",
                task_id=self.id,
                reason=reason,
                dead_letter_id=str(kept.dead_letter_id),
            )
            settle(get_settings(), raw)
        super()._announce_revoked(reason, terminated, signum, expired)
