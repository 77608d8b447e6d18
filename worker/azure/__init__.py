"""The Azure-to-PostgreSQL migration of the legacy voice agent's data (seed 000).

``shared/legacy-azure-format.md`` is the contract. The modules, in the order data flows:

* ``sources``: the six legacy sources, in the order foreign keys require;
* ``client``: the official SDK clients, their retry policy and error translation;
* ``readers``: paged, incremental reads (continuation tokens, service ``Timestamp``);
* ``values`` and ``transforms``: pure functions from a legacy record to the rows it becomes;
  ``oddities``: a call's odd fields read leniently and noted (a call is rejected only for an
  unreadable key or start);
* ``writer``: the SQL that lands the rows, idempotently, in the caller's transaction;
* ``checkpoints``: where each source stands, saved with the data it describes;
* ``batch``: one batch (``migration.run_batch`` and ``callstore migrate azure run``);
* ``status``: what is left, how fast it goes;
* ``reject_reasons``: the kinds of reject and what an operator does about each;
* ``by_call``: the records of single calls, read by SID and migrated again (the consistency
  check and its repair);
* ``generate`` and ``azurite``: realistic legacy data and the emulator, for tests, the
  benchmark and demos.
"""
