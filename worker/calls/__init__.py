"""What a worker does with a call: the ``calls.finalize`` pipeline and its dead letters.

The modules, in the order a call flows through them:

* ``validation``: the raw message checked against the contract (``models.payload``), before any
  database work; every refusal names the field;
* ``finalize``: the plain function behind ``calls.finalize`` — validate, make the partitions
  the rows need, persist in one transaction, dead-letter what can never be persisted;
* ``persist``: the ``calls`` row and every child row, written idempotently per
  ``(call_id, revision)`` in the caller's transaction; ``summary``: the 21 summary metrics it
  stores on ``calls`` (also in SQL, for the checks and the migration);
* ``dead_letters``: ``failed_payloads``, where a call that cannot be stored waits for an
  operator, and its replay;
* ``announcements``: "this call started" from the runtime, so a call never finalized is found.

Nothing here knows Celery: ``tasks/calls.py`` is the shell that retries and settles.
"""
