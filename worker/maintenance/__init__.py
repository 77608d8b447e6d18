"""Keeping the database healthy: the monthly partitions and retention (beat's jobs).

* ``partitions``: the monthly partitions of the four timeline tables — naming, making them
  ahead of the data (rotation), listing them, detaching them;
* ``retention``: expired calls deleted in short batches, expired months detached into the
  ``archive`` schema, archives dropped after their grace period; ``archive``: the bookkeeping
  of archived months, their exports and the verification before a drop.

``docs/maintenance.md`` describes both directions and their locks.
"""
