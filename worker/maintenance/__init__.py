"""Keeping the database healthy: the monthly partitions and retention (beat's jobs).

* ``partitions``: the monthly partitions of the four timeline tables — naming, making them
  ahead of the data (rotation), listing them, detaching them;
* ``retention``: expired calls deleted in short batches, expired months detached into the
  ``archive`` schema, archives dropped after their grace period; ``archive``: the bookkeeping
  of archived months, their exports and the verification before a drop;
* ``expiry``: the rules of both (the cutoff, the months calls hold, the grace period), asked of
  the SQL functions of revision 0007, which seed 001's runbook functions
  (``create_monthly_partitions()``, ``cleanup_old_partitions()``, ``drop_old_partitions()``)
  apply too.

``docs/maintenance.md`` describes both directions and their locks.
"""
