"""``worker.readahead``: order, errors and an early exit."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from worker.readahead import read_ahead


def test_items_arrive_in_order_and_the_thread_ends() -> None:
    with read_ahead(iter(range(50)), depth=2, name="t-order") as items:
        assert list(items) == list(range(50))
    assert not any(t.name == "t-order" for t in threading.enumerate())


def test_an_error_in_the_reader_is_raised_where_it_happened() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 could not be read")

    seen: list[int] = []

    def consume() -> None:
        with read_ahead(failing(), depth=1, name="t-error") as items:
            seen.extend(items)

    with pytest.raises(ValueError, match="page 3"):
        consume()
    assert seen == [1, 2]


def test_leaving_early_stops_an_endless_reader() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    with read_ahead(endless(), depth=1, name="t-endless") as items:
        assert next(items) == 0
    assert not any(t.name == "t-endless" for t in threading.enumerate())
    assert len(produced) <= 4  # never more than the hand-off's depth ahead
