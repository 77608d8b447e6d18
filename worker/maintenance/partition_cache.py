"""The months this process knows have partitions, shared by every path that writes timeline rows.

The finalize path and the Azure migration both write rows into monthly partitions that may not
exist yet. Asking the catalog before every write would cost a round trip per call, so each
process remembers the months it saw complete in all four tables and asks again only for a month
it has not seen, or after a write found one missing (``forget``: dropped since, by retention or
by hand).
"""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import Engine

from worker.db import raw_connection, session_scope
from worker.maintenance.partitions import ensure_partitions, existing_months


class PartitionGuard:
    """The months this process knows have partitions, so the hot path asks the catalog rarely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[date] | None = None

    def ensure(self, engine: Engine, months: set[date]) -> list[str]:
        with self._lock:
            if self._known is not None and months <= self._known:
                return []
        with session_scope(engine) as session:
            conn = raw_connection(session)
            created = ensure_partitions(conn, months=months) if months else []
            have = existing_months(conn)
        known = set.intersection(*have.values()) if have else set()
        with self._lock:
            self._known = known
        return created

    def forget(self) -> None:
        with self._lock:
            self._known = None


#: The one cache of this process (threads of a worker share it).
partition_guard = PartitionGuard()
