"""End-to-end acknowledgement of calls: the worker says "settled", the runtime forgets.

Acks-late and the visibility timeout guard a message only while Redis holds it. What the broker
loses for any other reason — a Redis host lost with its data, and, before the workers took
messages into in-flight lists (``worker.intake.inflight``), a worker killed between taking a
message and recording it as unacknowledged (celery/celery#7950) — only the producer can send
again. So the runtime keeps every call it published in its outbox (``worker.client.spool``,
``sent/``) until a worker has *settled* it — persisted it, found it already stored, or
dead-lettered it — and publishes it again if it stays unsettled for too long. Redelivery is
harmless: persisting is idempotent.

A settlement is a Redis key per call holding the newest settled revision, kept a week. It never
moves backwards: two workers settling two revisions of a call in either order leave the newer
one (a script compares and sets in one step, exactly, as decimal strings: revisions are
microsecond stamps, beyond what a Lua number holds exactly). Runtime-safe: no database imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from worker.client.queues import shared_client
from worker.log import get_logger
from worker.settings import ClientSettings

log = get_logger("callstore.settlement")

SETTLED_PREFIX = "callstore:settled:"
SETTLED_TTL_SECONDS = 7 * 24 * 3600
#: Where kombu's Redis transport keeps messages a worker has taken but not acknowledged.
UNACKED_HASH = "unacked"


def settled_key(call_id: str) -> str:
    return SETTLED_PREFIX + call_id


#: SET the key to ARGV[1] unless it holds a greater decimal integer; renew its expiry either way.
_SET_IF_GREATER = """
local current = redis.call('GET', KEYS[1])
local new = ARGV[1]
if (not current) or #new > #current or (#new == #current and new > current) then
  redis.call('SET', KEYS[1], new, 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def mark_settled(client: redis.Redis, call_id: str, revision: int) -> None:
    """Record that ``revision`` of ``call_id`` (and every older one) needs no further delivery."""
    script = client.register_script(_SET_IF_GREATER)
    script(keys=[settled_key(call_id)], args=[str(int(revision)), SETTLED_TTL_SECONDS])


def settled_revisions(client: redis.Redis, call_ids: Iterable[str]) -> dict[str, int]:
    """The newest settled revision of each of ``call_ids`` that has one."""
    ids = list(call_ids)
    if not ids:
        return {}
    values = client.mget([settled_key(c) for c in ids])
    found = {}
    for call_id, value in zip(ids, values, strict=True):
        if value is not None:
            try:
                found[call_id] = int(value)
            except ValueError:
                continue
    return found


def in_flight(client: redis.Redis, call_ids: Iterable[str]) -> set[str]:
    """Those of ``call_ids`` a worker holds right now (running, or waiting for a retry)."""
    wanted = set(call_ids)
    if not wanted:
        return set()
    holding: set[str] = set()
    for value in client.hvals(UNACKED_HASH):
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        holding.update(c for c in wanted if c in text)
    return holding


def settlement_of(raw: Any) -> tuple[str, int] | None:
    """(call id, revision) of a raw payload as the runtime named it, if it names them."""
    if not isinstance(raw, Mapping):
        return None
    call_id, revision = raw.get("call_id"), raw.get("revision")
    if not isinstance(call_id, str) or not isinstance(revision, int) or isinstance(revision, bool):
        return None
    return call_id, revision


def settle(settings: ClientSettings, raw: Any) -> None:
    """Mark the call in ``raw`` settled (best effort: if Redis cannot be told, the runtime
    publishes the call again later, which is harmless)."""
    named = settlement_of(raw)
    if named is None:
        return
    client = shared_client(settings.broker_url.get_secret_value())
    try:
        mark_settled(client, *named)
    except redis.RedisError as error:
        log.warning("settlement not recorded", call_id=named[0], error=str(error))
