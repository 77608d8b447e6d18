"""kombu's Redis transport, made to lose no message a worker takes, and to keep its messages
when Redis refuses writes.

**Taking.** kombu takes a message off its queue with ``BRPOP`` and records it as unacknowledged
(``ZADD unacked_index`` + ``HSET unacked``) only afterwards, when it hands the message to the
consumer; a worker killed in between lost the message for good (celery/celery#7950). The window
is not only a few instructions wide: a worker whose pool is busy leaves a ``BRPOP`` reply
unread in its socket until a process is free, the message already off the queue. Acks-late and
the visibility timeout cannot see it, and only a producer with an outbox (``CallRecorder``)
could send the message again; dead-letter replays, ``callstore queue move``, other services and
raw producers could not. Here the worker takes a message with ``BLMOVE`` into an in-flight list
of its own consumer, and the record takes it out of that list in the same step
(``worker.intake.inflight``): at every instant the message is in its queue, in an in-flight
list, or in ``unacked``. Each consumer refreshes a liveness key every second, on kombu's timer;
every worker sweeps, at start and on kombu's unacknowledged-restore interval, the in-flight
lists of consumers whose key expired back to the head of their queues. A killed worker's
message is so taken again within the liveness time (the visibility timeout, at most 30 s);
persisting is idempotent, so the rare second delivery (a consumer presumed dead that was only
slow) is harmless. A consumer that loses a reply (its connection broke while it waited) takes
a new identity, so what the lost reply held is swept back like a dead consumer's.

Why not the alternatives: a ``MULTI`` around ``BRPOP`` cannot block; a Lua script cannot block
either; Redis streams would change the message format every producer and tool (``callstore
queue``, the metrics, the runtime's kombu) reads.

**One list per queue.** ``BLMOVE`` takes from one key, where kombu's ``BRPOP`` waits on a list
per priority step of every queue. callstore sends no priorities, so the workers use the queue's
own list only (``priority_steps`` ``[0]``: what they publish goes there too), and the sweep moves
what another producer sent with a priority to the far end of its queue. A worker of several
queues (calls and maintenance) looks at all of them in one script (``LMOVE`` from the first
that holds an entry, in kombu's round-robin order) and only when all are empty waits on one of
them in turn, for its share of kombu's one-second poll: a backlog on one queue is taken without
a wait on another, and an arrival on any is served within about a second. A consumer that acknowledges nothing
(``no_ack``: replies to remote control) has nothing to record and takes with ``BRPOP``.

**Memory limit.** Redis at its memory limit (``maxmemory`` with ``noeviction``, the broker's
setting) refuses every command that may grow memory, and every command inside ``MULTI``. Here:

* taking: ``BLMOVE`` is refused; the worker takes with a script instead (``RPOP`` + ``LPUSH``,
  which Redis lets run once its first write is made), waiting a second between empty tries;
* recording as unacknowledged is a script too (``LREM`` first), and is tried again until Redis
  takes it should it be refused: the message stays in the in-flight list meanwhile;
* acknowledging (``ZREM`` + ``HDEL``) falls back to the same commands outside ``MULTI``,
  which Redis accepts at its limit (they free memory);
* putting a message back (a pool process died under it) is tried again until Redis takes it;
* the periodic restore of unacknowledged messages skips a round instead of failing; the sweep,
  the heartbeat and the fold of priority lists are scripts that run at the limit.

**Unreadable entries.** An entry of a queue that is not a JSON envelope kombu can read (nested
past the decoder's recursion limit, cut short, not an envelope, a body that does not decode) is
delivered as a message without a task, its bytes as body, so the consumer dead-letters it
(``worker.intake.consumer``) instead of the worker stopping with the entry taken.

``install`` makes this the transport of ``redis://``, ``rediss://`` and ``redis+socket://``
URLs in this process (the workers', beat's, Flower's, the CLI's); the runtime's client keeps
kombu's own. It needs Redis 6.2 or later (``BLMOVE``) and no ``global_keyprefix``.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from queue import Empty
from typing import Any, NamedTuple

import kombu.transport
import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils import json as kombu_json
from redis.exceptions import ExecAbortError, OutOfMemoryError

from worker.intake import inflight
from worker.intake.inflight import UNREAD_CONTENT
from worker.log import get_logger

log = get_logger("callstore.intake.transport")

#: What Redis answers at its memory limit: OOM for a command, EXECABORT for a MULTI holding one.
REFUSED_WRITES = (OutOfMemoryError, ExecAbortError)
_FIRST_WAIT_SECONDS = 0.5
_LONGEST_WAIT_SECONDS = 5.0
#: After Redis refused ``BLMOVE``, how long the worker takes by script before trying it again.
_REFUSED_TAKE_SECONDS = 1.0
#: The sweep runs on kombu's restore interval, and never more often than this.
_SWEEP_EVERY_SECONDS = 1.0
#: The oldest Redis with ``BLMOVE``.
OLDEST_REDIS = (6, 2)
#: The content type of an entry delivered in place of one kombu could not read.
UNREADABLE_CONTENT = UNREAD_CONTENT


def until_accepted(write: Callable[[], Any], what: str) -> None:
    """Run ``write`` until Redis takes it, waiting longer each time (up to 5 s)."""
    wait = _FIRST_WAIT_SECONDS
    while True:
        try:
            write()
            return
        except REFUSED_WRITES as error:
            log.warning(
                "Redis refuses writes (at its memory limit?); trying again",
                action=what,
                retry_in_s=wait,
                error=str(error),
            )
            time.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT_SECONDS)


class Taken(NamedTuple):
    """A message taken into an in-flight list and not yet recorded as unacknowledged."""

    in_flight: str
    queue: str
    entry: bytes
    #: The envelope delivered is the entry itself (so its record is made of the entry's bytes).
    readable: bool


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: Any) -> None:
        taken = _taken(self.channel).pop(delivery_tag, None)
        if taken is None:  # not taken into an in-flight list (``basic_get``): kombu's record

            def record() -> None:
                kombu_redis.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]

            until_accepted(record, "record_unacked")
            return
        try:
            until_accepted(lambda: self._record(message, delivery_tag, taken), "record_unacked")
        except BaseException:
            # Still in the in-flight list: this consumer stops living, so the sweep gives it back.
            self.channel.forget_consumer()
            raise
        virtual.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]

    def _record(self, message: Any, delivery_tag: str, taken: Taken) -> None:
        delivery = message.delivery_info
        exchange, routing_key = delivery["exchange"], delivery["routing_key"]
        record = None
        if not taken.readable:
            record = kombu_json.dumps([message._raw, exchange, routing_key]).encode()  # type: ignore[no-untyped-call]
        with self.channel.conn_or_acquire() as client:
            inflight.record_unacked(
                client,
                unacked_index=self.unacked_index_key,
                unacked=self.unacked_key,
                in_flight=taken.in_flight,
                tag=delivery_tag,
                at=time.time(),
                entry=taken.entry,
                exchange=exchange,
                routing_key=routing_key,
                record=record,
            )

    def ack(self, delivery_tag: Any) -> None:
        try:
            kombu_redis.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
        except REFUSED_WRITES:
            self._remove_outside_multi(delivery_tag)
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if requeue:

            def put_back() -> None:
                kombu_redis.QoS.reject(self, delivery_tag, requeue=True)  # type: ignore[no-untyped-call]

            until_accepted(put_back, "requeue")
            return
        self.ack(delivery_tag)

    def _remove_outside_multi(self, delivery_tag: Any) -> None:
        with self.channel.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            pipe.zrem(self.unacked_index_key, delivery_tag)
            pipe.hdel(self.unacked_key, delivery_tag)
            pipe.execute()

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        """kombu's restore of unacknowledged messages past the visibility timeout, then the
        sweep of in-flight lists of dead consumers."""
        try:
            kombu_redis.QoS.restore_visible(self, *args, **kwargs)  # type: ignore[no-untyped-call]
        except REFUSED_WRITES as error:
            log.warning(
                "Redis refuses writes; unacknowledged messages restored later", error=str(error)
            )
        self.channel.sweep_in_flight()

    def restore_unacked(self, client: Any = None) -> None:
        """At shutdown: what Redis refuses to take back stays unacknowledged, and comes back
        after the visibility timeout."""
        with self.channel.conn_or_acquire(client) as connection:
            for tag in list(self._delivered):
                try:
                    self.restore_by_tag(tag, client=connection)  # type: ignore[no-untyped-call]
                except REFUSED_WRITES as error:
                    log.warning("message left unacknowledged", delivery_tag=tag, error=str(error))
        self._delivered.clear()


def _taken(channel: Any) -> dict[str, Taken]:
    """The transport's messages taken and not yet recorded, by delivery tag (a transport's,
    not a channel's: kombu records a message no consumer waits for on its first channel)."""
    taken: dict[str, Taken] | None = getattr(channel.connection, "taken", None)
    return taken if taken is not None else {}


class _Taking(NamedTuple):
    """The take a channel has sent and not yet read the reply of."""

    queue: str
    #: The in-flight list of each queue the take may take from; none for a ``BRPOP`` of a
    #: queue without acknowledgements.
    in_flights: dict[str, str]
    command: str
    wait: float
    #: Sent while Redis refuses ``BLMOVE``: a script that found nothing waits here instead.
    refused: bool = False


class Channel(kombu_redis.Channel):
    QoS = QoS
    priority_steps = [0]  # noqa: RUF012  (kombu's attribute, a list)
    #: Deliveries after which a message given back by the sweep goes back unread
    #: (``CALLSTORE_POISON_DELIVERIES``, through the transport options).
    poison_deliveries = 3
    from_transport_options = (  # type: ignore[assignment]
        *kombu_redis.Channel.from_transport_options,
        "poison_deliveries",
    )

    _consumer: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._no_ack_queues: set[str] = set()
        self._listed_queues: set[str] = set()
        self._taking: _Taking | None = None
        self._refused_until = 0.0
        self._idle_until = 0.0
        #: A worker of several queues found them all empty: its next take waits on one.
        self._found_empty = False
        self._heartbeat_at = float("-inf")
        self._swept_at = float("-inf")
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.priority_steps = [0]
        if self.global_keyprefix:
            raise ValueError("callstore's Redis transport takes no global_keyprefix")
        self.liveness_seconds = inflight.liveness_seconds(self.visibility_timeout)
        self._check_server()

    def _check_server(self) -> None:
        version = str(self.client.info("server").get("redis_version", "0"))
        parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        if parts < OLDEST_REDIS:
            raise RuntimeError(
                f"callstore's workers need Redis 6.2 or later (BLMOVE); this one is {version}"
            )

    # -- consuming ---------------------------------------------------------------------------

    def basic_consume(self, queue: Any, *args: Any, **kwargs: Any) -> Any:
        no_ack = kwargs.get("no_ack", args[0] if args else False)
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, *args, **kwargs)  # type: ignore[no-untyped-call]

    def _brpop_start(self, timeout: Any = None) -> None:
        now = time.monotonic()
        if now < self._idle_until:
            return
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        queue = queues[0]
        wait = self.brpop_timeout if timeout is None else timeout
        wait = wait / len(queues) if wait else 0
        command: list[Any]
        in_flights: dict[str, str] = {}
        refused = False
        if queue in self._no_ack_queues:
            command = ["BRPOP", queue, wait]
        else:
            # One look at every queue, in the cycle's order, before a wait on one of them: a
            # backlog on one queue is taken without a wait on another that is empty.
            in_flights = {
                q: inflight.in_flight_key(self._live_consumer(q), q)
                for q in queues
                if q not in self._no_ack_queues
            }
            refused = now < self._refused_until
            if refused or (len(in_flights) > 1 and not self._found_empty):
                keys = [key for pair in in_flights.items() for key in pair]
                command = ["EVAL", inflight.TAKE, len(keys), *keys]
            else:
                command = ["BLMOVE", queue, in_flights[queue], "RIGHT", "LEFT", wait]
        self._taking = _Taking(queue, in_flights, command[0], wait, refused)
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()  # type: ignore[assignment]
        self.client.connection.send_command(*command)

    def _brpop_read(self, **options: Any) -> bool:
        taking, self._taking = self._taking, None
        try:
            if taking is None:
                raise Empty()
            try:
                reply = self.client.parse_response(
                    self.client.connection, taking.command, **options
                )
            except self.connection_errors:
                # A reply lost: what BLMOVE moved waits in a list of this consumer, which
                # stops living so that the sweep gives it back.
                self.forget_consumer()
                self.client.connection.disconnect()
                raise
            except REFUSED_WRITES as error:
                log.warning(
                    "Redis refuses writes (at its memory limit?); taking by script",
                    queue=taking.queue,
                    error=str(error),
                )
                self._refused_until = time.monotonic() + _REFUSED_TAKE_SECONDS
                raise Empty() from None
            queue, entry = taking.queue, None
            if taking.command == "EVAL":
                if reply:
                    queue, entry = reply[0].decode(), reply[1]
                    self._found_empty = False
                elif taking.refused:  # a script does not wait: wait here instead
                    self._idle_until = time.monotonic() + (taking.wait or 1)
                else:  # every queue empty: the next take waits on one of them
                    self._found_empty = True
            else:
                entry = reply[1] if taking.command == "BRPOP" and reply else reply
                self._found_empty = False
            self._queue_cycle.rotate(queue)
            if not entry:
                raise Empty()
            self._deliver_entry(queue, taking.in_flights.get(queue), entry)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()  # type: ignore[no-untyped-call]

    def _deliver_entry(self, queue: str, in_flight: str | None, entry: bytes) -> None:
        payload, readable = read_entry(entry, queue)
        if in_flight is None:
            self.connection._deliver(payload, queue)
            return
        taken = _taken(self)
        tag = payload["properties"]["delivery_tag"]
        taken[tag] = Taken(in_flight, queue, entry, readable)
        try:
            self.connection._deliver(payload, queue)
        except Exception as error:
            if taken.pop(tag, None) is None or not readable:
                raise  # recorded (kombu's and Celery's handling from here) or already unread
            if isinstance(error, self.connection_errors):
                self.forget_consumer()
                raise
            log.exception("a queue entry could not be read; it is delivered unread", queue=queue)
            unread = unreadable(entry, queue)
            taken[unread["properties"]["delivery_tag"]] = Taken(in_flight, queue, entry, False)
            self.connection._deliver(unread, queue)
        else:
            if taken.pop(tag, None) is not None:  # delivered, never recorded: give it back
                with self.conn_or_acquire() as client:
                    inflight.give_back(client, in_flight, queue, entry)

    # -- the consumer's liveness and the sweep -----------------------------------------------

    def _live_consumer(self, queue: str) -> str:
        """This channel's consumer, registered with ``queue``'s in-flight list before the
        first take into it."""
        if self._consumer is None:
            self._consumer = inflight.new_consumer_id()
            self._listed_queues = set()
        if (
            queue not in self._listed_queues
            or time.monotonic() - self._heartbeat_at >= self.liveness_seconds
        ):  # a list not registered yet, or a registration a sweep may have dropped
            self._heartbeat(queue)
        return self._consumer

    def forget_consumer(self) -> None:
        """Stop this consumer living (a new one takes its place at the next take): what its
        lists hold is given back by the sweep once its liveness key expires."""
        self._consumer = None

    def _heartbeat(self, *more: str) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        queues = sorted({q for q in self.active_queues if q not in self._no_ack_queues} | set(more))
        register = not self._listed_queues.issuperset(queues)
        with self.conn_or_acquire() as client:
            inflight.heartbeat(client, consumer, queues, self.liveness_seconds, register=register)
        self._listed_queues = set(queues)
        self._heartbeat_at = time.monotonic()

    def maybe_refresh_binding_expiry(self) -> None:
        """kombu calls this every second, from the event loop's timer and from each poll
        without one: the heartbeat rides on it, whether or not the channel takes messages."""
        super().maybe_refresh_binding_expiry()  # type: ignore[no-untyped-call]
        if self._closing or self.closed:
            return
        if time.monotonic() - self._heartbeat_at >= self.liveness_seconds / 3:
            self._heartbeat()

    def sweep_in_flight(self) -> None:
        """Give back what dead consumers held, and fold priority lists into their queues."""
        now = time.monotonic()
        if now - self._swept_at < _SWEEP_EVERY_SECONDS:
            return
        self._swept_at = now
        try:
            with self.conn_or_acquire() as client:
                swept = inflight.sweep(client, poison_limit=self.poison_deliveries)
                folded = inflight.fold(client, self._priority_lists())
        except redis.RedisError as error:
            log.warning("in-flight messages not swept this round", error=str(error))
            return
        if swept.restored:
            log.warning(
                "messages taken by workers lost before recording them are back in their queues",
                restored=swept.restored,
                unread=swept.unread,
            )
        if folded:
            log.warning("messages sent with a priority joined their queues", moved=folded)

    def _priority_lists(self) -> list[tuple[str, str]]:
        return [
            (f"{queue}{self.sep}{step}", queue)
            for queue in self.active_queues
            if queue not in self._no_ack_queues
            for step in kombu_redis.PRIORITY_STEPS
            if step
        ]

    def _on_connection_disconnect(self, connection: Any) -> None:
        if self._in_poll is connection and self._taking is not None:
            self.forget_consumer()  # a take in flight: its reply is lost with the connection
        super()._on_connection_disconnect(connection)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Read a take still in flight (kombu does), then give back what this consumer's lists
        hold and end its liveness, before kombu closes the connections."""
        if not self.closed:
            self._closing = True
            if self._in_poll:
                try:
                    self._brpop_read()
                except Empty:
                    pass
                except self.connection_errors as error:  # the consumer is forgotten: swept
                    log.warning("a take in flight at close is left to the sweep", error=str(error))
            self._release()
        super().close()  # type: ignore[no-untyped-call]

    def _release(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None or self.connection is None:
            return
        try:
            with self.conn_or_acquire() as client:
                inflight.sweep(client, poison_limit=self.poison_deliveries, release=consumer)
        except redis.RedisError as error:
            log.warning("in-flight messages left to the next sweep", error=str(error))


class Transport(kombu_redis.Transport):
    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.taken: dict[str, Taken] = {}


def unreadable(raw: bytes, queue: str = "") -> dict[str, Any]:
    """An envelope without a task carrying ``raw`` (base64), for the consumer to dead-letter;
    ``queue``: where kombu puts it back should it be restored."""
    return {
        "body": base64.b64encode(raw).decode("ascii"),
        "content-encoding": "binary",
        "content-type": UNREADABLE_CONTENT,
        "headers": {},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
        },
    }


def _is_envelope(payload: Any) -> bool:
    """Whether kombu can make a message of ``payload`` and record it."""
    if not isinstance(payload, dict):
        return False
    properties = payload.get("properties")
    if not isinstance(properties, dict) or not isinstance(properties.get("delivery_tag"), str):
        return False
    info = properties.get("delivery_info")
    return isinstance(info, dict) and "exchange" in info and "routing_key" in info


def read_entry(raw: bytes, queue: str = "") -> tuple[dict[str, Any], bool]:
    """The envelope of a queue entry, and whether it is the entry's own (else an unreadable
    one carrying its bytes). Bytes that are not UTF-8 survive the round trip."""
    text = raw.decode("utf-8", "surrogateescape")
    try:
        payload = kombu_json.loads(text)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, RecursionError):
        return unreadable(raw, queue), False
    if not _is_envelope(payload):
        return unreadable(raw, queue), False
    return payload, True


def loads_or_unreadable(text: str | bytes) -> Any:
    """kombu's JSON decoding of a queue entry (where kombu reads one itself: a restored record,
    ``basic_get``); an entry it cannot decode becomes an envelope without a task carrying the
    entry's bytes."""
    try:
        return kombu_json.loads(text)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, RecursionError):
        raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        return unreadable(raw)


def install() -> None:
    """Make ``Transport`` the one kombu resolves for Redis URLs, in this process, and let it
    read every queue entry (kombu's Redis channel decodes entries with its module's ``loads``)."""
    for alias in ("redis", "rediss"):
        kombu.transport.TRANSPORT_ALIASES[alias] = f"{__name__}:Transport"
        kombu.transport._transport_cache.pop(alias, None)
    kombu_redis.loads = loads_or_unreadable  # type: ignore[attr-defined,assignment]
