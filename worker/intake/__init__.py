"""The worker's main process: what happens to a message before the pool runs it.

Celery's main process takes a message off Redis, decompresses and decodes it, and pickles the
task for a pool process. Anything that goes wrong there stops the whole worker (a payload
nested 600 levels deep made the pickler raise ``RecursionError``, and every worker died on it
in turn) or drops the message (Celery acknowledges what it cannot decode), and a worker killed
between taking a message and recording it as unacknowledged lost it (celery/celery#7950).
This room makes that path safe:

* ``consumer`` — the worker's consumer, which looks at every ``calls.finalize`` message before
  Celery does (``gate``) and turns whatever it refuses, and whatever Celery cannot decode or
  does not know, into a ``calls.dead_letter`` task that keeps the bytes that arrived;
* ``deliveries`` — how often each message was delivered, so one that kills its worker again and
  again is dead-lettered instead of run (``CALLSTORE_POISON_DELIVERIES``);
* ``compression`` — decompression that stops at ``CALLSTORE_MAX_PAYLOAD_BYTES``;
* ``transport`` — the Redis transport: a message is taken into an in-flight list of the worker's
  consumer (``BLMOVE``) and recorded as unacknowledged out of it in one step, so a worker killed
  in between loses nothing; it keeps its messages when Redis refuses writes (at its memory
  limit) instead of stopping the worker, and delivers what it cannot read to be dead-lettered;
* ``inflight`` — those in-flight lists in Redis: the consumers' liveness keys and the sweep that
  gives back what dead consumers held;
* ``clients`` — one Redis client per kombu channel rather than one per command (task events,
  unacknowledged records, acknowledgements).
"""
