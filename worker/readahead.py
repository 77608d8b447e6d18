"""Reading ahead in a thread: the next items are fetched while the caller works on this one.

Both readers of the legacy Azure data (the migration's batches, the consistency check's pages)
spend their time waiting on Azure while their caller waits on PostgreSQL or hashes; one bounded
hand-off lets the two waits overlap without holding more than ``depth`` items in memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


@contextmanager
def read_ahead(items: Iterable[T], *, depth: int, name: str) -> Iterator[Iterator[T]]:
    """``items`` produced in a daemon thread named ``name``, at most ``depth`` ahead.

    An exception in the thread is raised in the caller at the item where it happened. Leaving
    the block stops the thread (it is never left blocked on a full queue) and joins it.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                put(item)
            put(_END)
        except BaseException as error:  # handed to the caller, which raises it
            put(error)

    def consume() -> Iterator[T]:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            del item  # not kept alive while the next one is awaited

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                continue
        thread.join()
