"""What a worker has taken off a queue and not yet recorded as unacknowledged, kept in Redis.

A worker takes a message with ``BLMOVE <queue> <in-flight list> RIGHT LEFT``: one atomic step
that leaves it in a list of its own consumer (``callstore:inflight:<consumer>:<queue>``) instead
of in the worker's memory alone. Recording it as unacknowledged removes it from that list in the
same step (``RECORD``), so at every instant a message is in its queue, in an in-flight list or
in kombu's ``unacked`` hash, whose visibility timeout gives it back once its worker is gone.

Each consumer keeps a liveness key (``callstore:consumer:<consumer>``) that expires unless it
is refreshed (``heartbeat``); a registry hash (``callstore:inflight``) names every in-flight list
with its consumer's liveness key and its queue. ``sweep`` gives the lists of consumers whose key
expired back to the head of their queues (their oldest message is taken next), in one script,
so two workers sweeping at once never both give a message back.

Redis at its memory limit refuses every command that may grow memory (``BLMOVE``, ``SET``,
``HSET``, ``ZADD``), but a Lua script (without flags) runs every command once it has made a
first write: each script here starts with a write that never grows memory (``RPOP``, ``LREM``,
``PEXPIRE``, ``LPOP``), so taking, recording, the heartbeat and the sweep all go on at the limit,
where the pipeline must go on draining the queue to free memory.

A message whose worker dies every time it holds it (one that makes the main process die while
reading it) would otherwise go round for ever: each entry given back is counted
(``callstore:restored:<sha1 of its bytes>``), and the ``poison_limit``-th time (as for a
message that kills pool processes, ``CALLSTORE_POISON_DELIVERIES``) it goes back as a message
without a task carrying its bytes unread, which the consumer dead-letters (``PoisonMessage``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import redis

IN_FLIGHT_PREFIX = "callstore:inflight:"
REGISTRY_KEY = "callstore:inflight"
LIVENESS_PREFIX = "callstore:consumer:"
RESTORED_PREFIX = "callstore:restored:"
#: A count of give-backs outlives any redelivery of its entry, but not the day.
RESTORED_TTL_SECONDS = 24 * 3600
#: The header a message given back as unread carries: why, for its dead letter.
POISON_HEADER = "x-callstore-poison"
#: The content type of a message that carries a queue entry's bytes unread.
UNREAD_CONTENT = "application/x-callstore-unreadable"
#: How long a consumer whose heartbeat stopped is presumed alive, at most and at least.
LONGEST_LIVENESS_SECONDS = 30
SHORTEST_LIVENESS_SECONDS = 3


def liveness_seconds(visibility_timeout: float) -> int:
    """A killed consumer's in-flight messages come back no later than its unacknowledged ones
    would (the visibility timeout), and within 30 s; never under 3 s (the heartbeat runs every
    second, and a busy second must not make a live consumer look dead)."""
    return int(max(SHORTEST_LIVENESS_SECONDS, min(LONGEST_LIVENESS_SECONDS, visibility_timeout)))


def new_consumer_id() -> str:
    return uuid.uuid4().hex


def in_flight_key(consumer: str, queue: str) -> str:
    return f"{IN_FLIGHT_PREFIX}{consumer}:{queue}"


def liveness_key(consumer: str) -> str:
    return f"{LIVENESS_PREFIX}{consumer}"


#: Pairs of KEYS, a queue and its in-flight list, in the order to try them: ``LMOVE`` from the
#: first queue that holds an entry, as a script (Redis at its memory limit refuses ``BLMOVE``;
#: ``RPOP`` first lets the ``LPUSH`` run), and a worker of several queues looks at all of them in
#: one step. Returns ``{queue, entry}``, or nil when every queue is empty.
TAKE = """
for i = 1, #KEYS, 2 do
  local entry = redis.call('RPOP', KEYS[i])
  if entry then
    redis.call('LPUSH', KEYS[i + 1], entry)
    return {KEYS[i], entry}
  end
end
return false
"""

#: KEYS[1] unacked index (zset), KEYS[2] unacked (hash), KEYS[3] in-flight list; ARGV[1]
#: delivery tag, ARGV[2] time, ARGV[3] the entry as taken, ARGV[4] the end of the record
#: (``,"<exchange>","<routing key>"]``), ARGV[5] the whole record, or empty to make it of the
#: entry's own bytes. kombu's record is ``[<envelope>, exchange, routing key]``.
RECORD = """
redis.call('LREM', KEYS[3], 1, ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local record = ARGV[5]
if record == '' then record = '[' .. ARGV[3] .. ARGV[4] end
redis.call('HSET', KEYS[2], ARGV[1], record)
return 1
"""

#: KEYS[1] in-flight list, KEYS[2] queue; ARGV[1] the entry: back to the head of its queue.
GIVE_BACK = """
local removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
if removed > 0 then redis.call('RPUSH', KEYS[2], ARGV[1]) end
return removed
"""

#: KEYS[1] liveness key, KEYS[2] registry; ARGV[1] time to live (ms), ARGV[2] '1' to register
#: the lists, then pairs of in-flight list and queue. A consumer whose key had expired is
#: registered again (a sweep may have dropped its lists meanwhile). Returns 1 if it was alive.
HEARTBEAT = """
local alive = redis.call('PEXPIRE', KEYS[1], ARGV[1])
if alive == 0 then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
if alive == 0 or ARGV[2] == '1' then
  for i = 3, #ARGV, 2 do
    redis.call('HSET', KEYS[2], ARGV[i], cjson.encode({KEYS[1], ARGV[i + 1]}))
  end
end
return alive
"""

#: KEYS[1] registry; ARGV[1] a liveness key to release even if it lives ('' for none), ARGV[2]
#: the give-backs after which an entry goes back unread, ARGV[3] the prefix of their counts,
#: ARGV[4] their time to live (s), ARGV[5] the content type and ARGV[6] the header of a message
#: given back unread. Returns {entries given back, of them unread}.
SWEEP = """
local entries = redis.call('HGETALL', KEYS[1])
local restored, unread = 0, 0
for i = 1, #entries, 2 do
  local list = entries[i]
  local owner = cjson.decode(entries[i + 1])
  local liveness, queue = owner[1], owner[2]
  if liveness == ARGV[1] or redis.call('EXISTS', liveness) == 0 then
    local entry = redis.call('LPOP', list)
    while entry do
      local digest = redis.sha1hex(entry)
      local counter = ARGV[3] .. digest
      local count = redis.call('INCR', counter)
      redis.call('EXPIRE', counter, ARGV[4])
      if count >= tonumber(ARGV[2]) then
        local headers = {}
        headers[ARGV[6]] = 'taken ' .. count .. ' times by a worker lost before' ..
          ' recording it (CALLSTORE_POISON_DELIVERIES=' .. ARGV[2] .. ')'
        entry = cjson.encode({
          body = entry,
          ['content-type'] = ARGV[5],
          ['content-encoding'] = 'binary',
          headers = headers,
          properties = {
            delivery_tag = 'unread-' .. digest,
            delivery_info = {exchange = '', routing_key = queue},
            priority = 0,
          },
        })
        redis.call('DEL', counter)
        unread = unread + 1
      end
      redis.call('RPUSH', queue, entry)
      restored = restored + 1
      entry = redis.call('LPOP', list)
    end
    redis.call('HDEL', KEYS[1], list)
  end
end
if ARGV[1] ~= '' then redis.call('DEL', ARGV[1]) end
return {restored, unread}
"""

#: Pairs of KEYS: a list kombu keeps for a priority, and its queue. kombu publishes a message
#: with a priority to a list of its own; the workers take from the queue's list only, so what
#: another producer sent with a priority joins the queue's far end, in its order.
FOLD = """
local moved = 0
for i = 1, #KEYS, 2 do
  local entry = redis.call('RPOP', KEYS[i])
  while entry do
    redis.call('LPUSH', KEYS[i + 1], entry)
    moved = moved + 1
    entry = redis.call('RPOP', KEYS[i])
  end
end
return moved
"""


@dataclass(frozen=True, slots=True)
class Swept:
    restored: int
    #: Of them, given back as a message without a task (their worker died too often).
    unread: int


def heartbeat(
    client: redis.Redis,
    consumer: str,
    queues: list[str],
    ttl_seconds: float,
    *,
    register: bool = True,
) -> bool:
    """Say ``consumer`` lives for ``ttl_seconds`` more; ``register``: its in-flight lists of
    ``queues`` too (they are anyway if it had expired). Whether it was alive."""
    args: list[str | int] = [int(ttl_seconds * 1000), "1" if register else "0"]
    for queue in queues:
        args += [in_flight_key(consumer, queue), queue]
    alive = client.register_script(HEARTBEAT)(
        keys=[liveness_key(consumer), REGISTRY_KEY], args=args
    )
    return bool(alive)


def sweep(client: redis.Redis, *, poison_limit: int, release: str | None = None) -> Swept:
    """Give the in-flight lists of consumers presumed dead back to the head of their queues;
    ``release``: a consumer of this process that is done (its lists go back whether or not it
    lives)."""
    restored, unread = client.register_script(SWEEP)(
        keys=[REGISTRY_KEY],
        args=[
            liveness_key(release) if release else "",
            poison_limit,
            RESTORED_PREFIX,
            RESTORED_TTL_SECONDS,
            UNREAD_CONTENT,
            POISON_HEADER,
        ],
    )
    return Swept(int(restored), int(unread))


def fold(client: redis.Redis, pairs: list[tuple[str, str]]) -> int:
    """Move every entry of each ``(list, queue)`` pair's list to the queue's far end."""
    if not pairs:
        return 0
    keys = [key for pair in pairs for key in pair]
    return int(client.register_script(FOLD)(keys=keys))


def record_unacked(
    client: redis.Redis,
    *,
    unacked_index: str,
    unacked: str,
    in_flight: str,
    tag: str,
    at: float,
    entry: bytes,
    exchange: str,
    routing_key: str,
    record: bytes | None = None,
) -> None:
    """Record ``entry`` as unacknowledged under ``tag`` (as kombu does) and take it out of its
    in-flight list, in one step; ``record``: kombu's record when it cannot be made of the
    entry's own bytes (an entry that is not a readable envelope)."""
    end = "," + json.dumps(exchange) + "," + json.dumps(routing_key) + "]"
    client.register_script(RECORD)(
        keys=[unacked_index, unacked, in_flight],
        args=[tag, repr(at), entry, end, record or b""],
    )


def give_back(client: redis.Redis, in_flight: str, queue: str, entry: bytes) -> bool:
    """Put ``entry`` back at the head of ``queue`` if it is still in ``in_flight``."""
    return bool(client.register_script(GIVE_BACK)(keys=[in_flight, queue], args=[entry]))
