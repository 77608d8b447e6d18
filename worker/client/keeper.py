"""The process's keeper thread: writes the call journals and ticks the live recorders.

One daemon thread per process. A new journal is written at once (its file created, locked and
holding the call's identity within milliseconds of the recorder's construction, so a process
that dies at any moment after that leaves the call behind). Then every tick (the shortest
``CALLSTORE_JOURNAL_FLUSH_SECONDS`` of the journals it keeps) it flushes each journal
(``worker.client.journal``) and calls each live recorder's ``tick`` (which decides on a
checkpoint and hands it to its own executor, so a slow broker never delays a flush). It sleeps
when there is nothing to keep.

A forked child drops the journals it inherited (their descriptors would keep the parent's
locks alive after the parent died); at a normal interpreter exit what is pending is written.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from worker.client.journal import Journal

logger = logging.getLogger("callstore.journal")

#: Tick when no journal asks for a shorter one (checkpoints only need this coarse a clock).
DEFAULT_TICK_SECONDS = 1.0

Ticker = Callable[[float], None]


class Keeper:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._journals: set[Journal] = set()
        #: Journals kept since the last pass, written before the next tick.
        self._fresh: list[Journal] = []
        self._tickers: list[weakref.WeakMethod[Ticker]] = []
        self._thread: threading.Thread | None = None

    def keep(self, journal: Journal | None = None, ticker: Ticker | None = None) -> None:
        """Flush ``journal`` and call ``ticker(monotonic now)`` every tick from now on; the
        ticker is held weakly (a recorder that goes away stops being ticked)."""
        with self._condition:
            if journal is not None:
                self._journals.add(journal)
                self._fresh.append(journal)
            if ticker is not None:
                self._tickers.append(weakref.WeakMethod(ticker))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="callstore-journal", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def _interval(self) -> float:
        return min((j.flush_seconds for j in self._journals), default=DEFAULT_TICK_SECONDS)

    def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            with self._condition:
                while not self._journals and not self._tickers:
                    self._condition.wait()
                    next_tick = time.monotonic()
                fresh, self._fresh = self._fresh, []
                if not fresh:
                    delay = next_tick - time.monotonic()
                    if delay > 0:
                        self._condition.wait(delay)
                        continue  # woken early (a journal added): write it, then wait again
                    interval = self._interval()
                    journals = list(self._journals)
                    tickers = list(self._tickers)
            if fresh:
                self.flush(fresh)
                # A journal that asks for a shorter interval than the tick under way is kept at
                # its own pace from now, not after the longer wait ends.
                with self._condition:
                    next_tick = min(next_tick, time.monotonic() + self._interval())
                continue
            next_tick = time.monotonic() + interval
            self.flush(journals)
            self._tick(tickers)

    def flush(self, journals: list[Journal] | None = None) -> None:
        """Write every kept journal now (the keeper's tick, and the interpreter's exit)."""
        with self._condition:
            journals = list(self._journals) if journals is None else journals
        for journal in journals:
            try:
                journal.flush()
            except Exception:  # one journal must never stop the others being written
                logger.exception("call journal flush failed", extra={"journal": str(journal.path)})
            if journal.closed:
                with self._condition:
                    self._journals.discard(journal)

    def _tick(self, tickers: list[weakref.WeakMethod[Ticker]]) -> None:
        now = time.monotonic()
        gone = []
        for reference in tickers:
            ticker = reference()
            if ticker is None:
                gone.append(reference)
                continue
            try:
                ticker(now)
            except Exception:
                logger.exception("call recorder tick failed")
        if gone:
            with self._condition:
                self._tickers = [t for t in self._tickers if t not in gone]

    def forget(self, journal: Journal) -> None:
        with self._condition:
            self._journals.discard(journal)

    def _after_fork_in_child(self) -> None:
        for journal in self._journals:
            journal.forget_after_fork()
        self._condition = threading.Condition()
        self._journals = set()
        self._fresh = []
        self._tickers = []
        self._thread = None


keeper = Keeper()
os.register_at_fork(after_in_child=keeper._after_fork_in_child)
atexit.register(keeper.flush)
