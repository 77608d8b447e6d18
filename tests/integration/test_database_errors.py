"""Driver errors translated into the error tree, on a real PostgreSQL: a database that refuses
every write for a reason of its own (read-only, a missing privilege) is an outage, not a bad
payload, so the call waits in the queue instead of being dead-lettered or dropped."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import Database
from worker.db import classify
from worker.errors import DatabaseRefused, DatabaseUnavailable


def _refusal(conn: psycopg.Connection[Any], statement: str) -> BaseException:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(statement)
    conn.rollback()
    return raised.value


def test_a_read_only_transaction_is_a_refusing_database(database: Database) -> None:
    with database.connect() as conn:
        conn.execute("SET default_transaction_read_only = on")
        conn.commit()
        error = _refusal(conn, "INSERT INTO job_runs (job, last_status) VALUES ('x', 'running')")
    translated = classify(error)
    assert isinstance(translated, DatabaseRefused)
    assert isinstance(translated, DatabaseUnavailable)


def test_a_missing_privilege_is_a_refusing_database(database: Database) -> None:
    role = f"reader_{database.name}"
    with psycopg.connect(database.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        with database.connect() as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            error = _refusal(
                conn, "INSERT INTO job_runs (job, last_status) VALUES ('x', 'running')"
            )
        assert isinstance(classify(error), DatabaseRefused)
    finally:
        with psycopg.connect(database.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
