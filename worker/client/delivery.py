"""The hand-off of a recorded call: publish it, or spool it when the broker cannot take it.

``CallRecorder`` only buffers; what it hands over goes through ``Handoff``. A call the broker
accepted is kept in the outbox until a worker settles it (``worker.client.settlement``); a call
it refused is written durably to the spool. Either way a background thread per spool
(``_SpoolDrainer``) re-publishes what is spooled and reconciles the outbox, so a call is safe
even if this runtime finalizes no further call. Start announcements are sent from a small
executor, so constructing a recorder never waits on the network.

``drain`` is the same pass for the CLI (``callstore spool flush``) and beat
(``maintenance.flush_spool``).

The publisher (Celery, kombu, redis) and the drain (structlog) are imported where they are
first used, always in a background thread: constructing a recorder loads neither, so importing
the client stays light and the event loop never waits on those imports.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from models.payload import ANNOUNCE_TASK_NAME, QUEUE, TASK_NAME
from worker.client.journal import list_journals
from worker.client.spool import Send, Spool
from worker.errors import BrokerUnavailable
from worker.settings import ClientSettings, get_client_settings

if TYPE_CHECKING:
    from worker.client.publisher import Publisher

logger = logging.getLogger("callstore.recorder")

_SPOOL_CHECK_INTERVAL_SECONDS = 5.0


def _publisher_for(settings: ClientSettings) -> Publisher:
    from worker.client.publisher import get_publisher

    return get_publisher(settings)


def publisher_send(publisher: Publisher) -> Send:
    """``publisher`` as the ``send(task, queue, args)`` the spool and ``drain`` take."""

    def send(task: str, queue: str, args: list[Any]) -> str:
        return publisher.send(task, args=list(args), queue=queue)

    return send


class _SpoolDrainer:
    """Drains the spool and reconciles the outbox in one background thread per spool.

    Started by every hand-off and every new call; it loops while anything is spooled, waits for
    its settlement, or is an orphaned journal to recover, so a call whose message a worker lost
    is published again even if this runtime finalizes no further call, and a restarted runtime
    recovers its predecessor's calls. Each loop uses the settings and publisher of the latest
    start.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._settings: ClientSettings | None = None
        self._publisher: Publisher | None = None

    def maybe_start(self, settings: ClientSettings, spool: Spool, publisher: Publisher) -> None:
        with self._lock:
            self._settings, self._publisher = settings, publisher
            if self._running:
                return
            self._running = True
        threading.Thread(
            target=self._drain, args=(spool,), name="callstore-spool", daemon=True
        ).start()

    def _drain(self, spool: Spool) -> None:
        try:
            from worker.client.drain import drain

            while True:
                time.sleep(_SPOOL_CHECK_INTERVAL_SECONDS)
                with self._lock:
                    settings, publisher = self._settings, self._publisher
                assert settings is not None
                assert publisher is not None
                result = drain(settings, send=publisher_send(publisher))
                if result.flushed.sent or result.reconciled.redelivered:
                    logger.info(
                        "spool drained",
                        extra={
                            "sent": result.flushed.sent,
                            "published_again": result.reconciled.redelivered,
                        },
                    )
                if spool.is_empty() and not spool.sent_entries() and not _orphans(spool):
                    return
        except Exception:  # a background drain must never take the runtime down
            logger.exception("spool drain failed")
        finally:
            with self._lock:
                self._running = False


def _orphans(spool: Spool) -> bool:
    return any(not journal.live for journal in list_journals(spool.directory))


_drainers: dict[str, _SpoolDrainer] = {}
_drainers_lock = threading.Lock()


def _drainer_for(spool: Spool) -> _SpoolDrainer:
    """One drainer per spool directory (a process normally has exactly one)."""
    key = str(spool.directory.resolve())
    with _drainers_lock:
        return _drainers.setdefault(key, _SpoolDrainer())


#: Announcements are sent from here so that constructing a recorder never waits on the network.
_ANNOUNCER_THREADS = 2
_announcer = ThreadPoolExecutor(
    max_workers=_ANNOUNCER_THREADS, thread_name_prefix="callstore-announce"
)


def wait_for_announcements(timeout: float = 30.0) -> None:
    """Block until the announcements queued so far have been sent (or spooled): for tools that
    start many calls at once and then measure something else."""
    markers = [_announcer.submit(lambda: None) for _ in range(_ANNOUNCER_THREADS)]
    for marker in markers:
        marker.result(timeout=timeout)


class Handoff:
    """Where one recorder's messages go. ``settings``, ``publisher`` and ``spool`` are
    injectable (tests, benchmarks); each left out is the process's own, found at send time."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        publisher: Publisher | None = None,
        spool: Spool | None = None,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self._spool = spool

    def settings(self) -> ClientSettings:
        return self._settings or get_client_settings()

    def spool(self, settings: ClientSettings) -> Spool:
        return self._spool or Spool(settings.spool_dir)

    def watch(self, settings: ClientSettings) -> None:
        """Make sure the spool's drainer runs (in the background: it may build the publisher),
        so orphaned journals of dead processes are recovered while this process lives."""
        _announcer.submit(self._watch, settings)

    def _watch(self, settings: ClientSettings) -> None:
        try:
            publisher = self._publisher or _publisher_for(settings)
            spool = self.spool(settings)
            _drainer_for(spool).maybe_start(settings, spool, publisher)
        except Exception:
            logger.exception("spool drainer not started")

    def announce(self, announcement: dict[str, Any]) -> None:
        """Tell the workers a call started, in the background (best effort, but spooled like a
        call when the broker is down)."""
        _announcer.submit(self._announce, announcement)

    def _announce(self, announcement: dict[str, Any]) -> None:
        try:
            self._send(ANNOUNCE_TASK_NAME, announcement, compress=False)
        except Exception:  # an announcement must never disturb the call itself
            logger.exception("call start not announced", extra={"call_id": announcement["call_id"]})

    def deliver(self, payload: dict[str, Any], *, approx_bytes: int) -> str | None:
        """Blocking part of the hand-off: "enqueued", "spooled" when the broker is unavailable,
        or None (logged at ERROR) when the payload could be neither enqueued nor spooled.

        ``approx_bytes`` (the recorder's running estimate) decides compression without encoding
        the payload twice.
        """
        settings = self.settings()
        try:
            return self._send(
                TASK_NAME, payload, compress=approx_bytes >= settings.compress_min_bytes
            )
        except OSError as error:
            logger.error(
                "call data could be neither enqueued nor spooled",
                extra={"call_id": payload["call_id"], "revision": payload["revision"],
                       "spool_error": str(error)},
            )  # fmt: skip
            return None

    def _send(self, task: str, payload: dict[str, Any], *, compress: bool) -> str:
        """Publish ``payload``; on a broker failure spool it and return "spooled".

        Raises ``OSError`` when it can be neither published nor spooled.
        """
        from worker.client.publisher import payload_repr

        settings = self.settings()
        publisher = self._publisher or _publisher_for(settings)
        spool = self.spool(settings)
        args = [payload]
        try:
            publisher.send(
                task, args=args, queue=QUEUE, compress=compress, argsrepr=payload_repr(payload)
            )
        except BrokerUnavailable as error:
            path = spool.put(task, QUEUE, args, reason=str(error), key=payload["call_id"])
            logger.warning(
                "broker unavailable; message spooled",
                extra={"task": task, "call_id": payload["call_id"], "spool_file": str(path),
                       "broker_error": str(error)},
            )  # fmt: skip
            _drainer_for(spool).maybe_start(settings, spool, publisher)
            return "spooled"
        if task == TASK_NAME:
            self._keep_in_outbox(spool, payload)
        _drainer_for(spool).maybe_start(settings, spool, publisher)
        return "enqueued"

    @staticmethod
    def _keep_in_outbox(spool: Spool, payload: dict[str, Any]) -> None:
        try:
            spool.record_sent(
                TASK_NAME, QUEUE, [payload], key=payload["call_id"], revision=payload["revision"]
            )
        except OSError as error:  # enqueued all the same; only the broker's window is open
            logger.warning(
                "call enqueued but not kept in the outbox",
                extra={"call_id": payload["call_id"], "outbox_error": str(error)},
            )
