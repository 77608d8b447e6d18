"""Local tooling: the embedded servers, the demo and simulated data. Never imported by
production code (an import contract in ``pyproject.toml`` enforces it).

* ``stack``: PostgreSQL (pgvector) and Redis embedded from PyPI, run from one data directory
  (``callstore stack up|down|status``), migrated and partitioned;
* ``processes``: starting and stopping worker, beat and Flower processes with log files;
* ``simulate``: realistic calls driven through ``CallRecorder`` as the runtime drives it;
* ``raw_messages``: messages as any producer could send them (the soak's poison message);
* ``demo``: ``callstore demo`` — everything above, end to end, with a summary;
* ``azurite`` and ``legacy_data``: the Azure Storage emulator and realistic legacy Azure data
  (``python -m worker.dev.azurite``, ``python -m worker.dev.legacy_data``).
"""
