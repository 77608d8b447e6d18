"""The rules of retention and the export digest, without a database."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from models.payload import MAX_CLOCK_SKEW
from worker.maintenance.archive import RowDigest, digest_chunks
from worker.maintenance.partitions import add_months, month_bounds
from worker.maintenance.retention import cutoff, first_kept_month, may_own_rows_before


def test_zero_days_keeps_everything() -> None:
    assert cutoff(datetime(2027, 3, 15, tzinfo=UTC), 0) is None
    assert first_kept_month(datetime(2027, 3, 15, tzinfo=UTC), 0) is None


def test_a_month_expires_when_it_ends_before_the_cutoff() -> None:
    found = cutoff(datetime(2027, 3, 15, 12, tzinfo=UTC), 365)
    assert found is not None
    assert found.calls_before == datetime(2026, 3, 15, 12, tzinfo=UTC)
    # February 2026 ended before the cutoff; March 2026 holds calls that are kept.
    assert found.keep_from == date(2026, 3, 1)
    assert found.keep_from_at == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_month_ending_within_the_clock_skew_of_the_cutoff_is_kept() -> None:
    # A call that started just after the cutoff may have entries stamped up to an hour before
    # it, in the previous month: that month must stay until such calls are expired too.
    late = cutoff(datetime(2026, 5, 1, 0, 30, tzinfo=UTC), 30)
    assert late is not None
    assert late.calls_before == datetime(2026, 4, 1, 0, 30, tzinfo=UTC)
    assert late.keep_from == date(2026, 3, 1)  # March ended only 30 minutes before the cutoff
    later = cutoff(datetime(2026, 5, 1, 1, 0, tzinfo=UTC), 30)
    assert later is not None
    assert later.keep_from == date(2026, 4, 1)


@given(
    now=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    days=st.integers(min_value=1, max_value=3650),
)
def test_no_kept_call_can_own_a_row_in_an_expired_month(now: datetime, days: int) -> None:
    found = cutoff(now, days)
    assert found is not None
    last_expired = add_months(found.keep_from, -1)
    # The earliest entry of the earliest kept call is after the last expired month ends ...
    assert found.calls_before - MAX_CLOCK_SKEW >= month_bounds(last_expired)[1]
    # ... and the guard before a detach looks at every call that could own a row in it.
    assert may_own_rows_before(last_expired) <= found.calls_before
    # The first kept month is not expired: it ends after the earliest kept entry.
    assert month_bounds(found.keep_from)[1] > found.calls_before - MAX_CLOCK_SKEW


def test_rotation_keeps_from_the_first_kept_month() -> None:
    assert first_kept_month(datetime(2027, 1, 10, tzinfo=UTC), 365) == date(2026, 1, 1)


@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=30))
def test_digest_ignores_row_order_and_chunking(rows: list[bytes]) -> None:
    stream = b"".join(row + b"\n" for row in rows)
    shuffled = rows[:]
    random.Random(len(rows)).shuffle(shuffled)
    cuts = sorted(random.Random(7).sample(range(len(stream) + 1), min(5, len(stream) + 1)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = digest_chunks([stream])
    assert whole[0] == len(rows)
    assert digest_chunks(chunks) == whole
    assert digest_chunks([b"".join(r + b"\n" for r in shuffled)]) == whole


def test_digest_notices_a_changed_lost_or_added_row() -> None:
    rows = [b"a\t1", b"b\t2", b"c\t3"]
    base = digest_chunks([b"\n".join(rows) + b"\n"])
    assert digest_chunks([b"a\t1\nb\t2\nc\t4\n"]) != base
    assert digest_chunks([b"a\t1\nb\t2\n"]) != base
    assert digest_chunks([b"a\t1\nb\t2\nc\t3\nc\t3\n"]) != base


def test_a_last_row_without_newline_counts() -> None:
    digest = RowDigest()
    digest.feed(b"x\ny")
    assert digest.result()[0] == 2
