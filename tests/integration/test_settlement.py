"""The settled marker on a real Redis: what a worker tells the runtime it may forget."""

from __future__ import annotations

import redis

from worker.client.settlement import (
    SETTLED_TTL_SECONDS,
    mark_settled,
    settled_key,
    settled_revisions,
)


def test_the_settled_marker_never_moves_backwards(redis_client: redis.Redis) -> None:
    """Two workers settle two revisions of one call in either order (a late redelivery of the
    older one): the runtime must never be told only the older one is settled."""
    call_id = "2f1e0e8c-0d53-4b53-9a7c-8c2f0a4c1d77"
    mark_settled(redis_client, call_id, 1_764_460_800_000_002)
    mark_settled(redis_client, call_id, 1_764_460_800_000_001)
    assert settled_revisions(redis_client, [call_id]) == {call_id: 1_764_460_800_000_002}
    mark_settled(redis_client, call_id, 2**63 - 1)  # beyond a double's exact integers
    mark_settled(redis_client, call_id, 2**63 - 2)
    assert settled_revisions(redis_client, [call_id]) == {call_id: 2**63 - 1}
    assert 0 < redis_client.ttl(settled_key(call_id)) <= SETTLED_TTL_SECONDS
