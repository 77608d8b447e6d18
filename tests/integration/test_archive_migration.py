"""Revision 0002: the archive schema and ``archived_partitions``, up and down."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import Database
from worker.migrations import downgrade, upgrade


def _has_archive_schema(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regnamespace('archive') IS NOT NULL").fetchone()
    return bool(row and row[0])


def test_downgrade_and_upgrade_again(database: Database, conn: psycopg.Connection[Any]) -> None:
    assert _has_archive_schema(conn)
    downgrade(database.sqlalchemy_url, target="0001")
    assert not _has_archive_schema(conn)
    row = conn.execute("SELECT to_regclass('archived_partitions')").fetchone()
    assert row == (None,)
    upgrade(database.sqlalchemy_url)
    assert _has_archive_schema(conn)


def test_downgrade_refuses_to_drop_archived_partitions(
    database: Database, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE archive.call_messages_2025_01 (id int)")
    with pytest.raises(Exception, match="depend"):
        downgrade(database.sqlalchemy_url, target="0001")
    assert _has_archive_schema(conn)
