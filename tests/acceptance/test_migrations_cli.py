"""From an empty database to head with the console scripts, as the compose ``migrate`` service
runs them: ``alembic upgrade head`` makes the schema and no partition, ``callstore partitions
ensure`` makes this month and the configured months ahead, and ``alembic check`` finds no drift."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from models.base import PARTITIONED_TABLES, UPDATED_AT_TABLES
from models.tables import metadata
from tests.catalog import alembic_versions, partition_names, scalars, table_names
from tests.conftest import Database
from worker import migrations as schema
from worker.maintenance.partitions import add_months, month_range, month_start, partition_name
from worker.settings import ENV_PREFIX

BIN = Path(sys.executable).parent


def _run(program: str, database: Database, *args: str, cwd: Path, **env: str) -> str:
    """A console script as the compose ``migrate`` service runs it: configured by CALLSTORE_*
    variables only, from a directory without .env or stack.env."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    environment.update(
        CALLSTORE_DATABASE_URL=database.url,
        CALLSTORE_BROKER_URL="redis://localhost:6379/0",  # required, never contacted
        **env,
    )
    result = subprocess.run(
        [str(BIN / program), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _alembic(database: Database, *args: str, cwd: Path) -> str:
    return _run("alembic", database, "-c", str(schema.ALEMBIC_INI), *args, cwd=cwd)


def test_upgrade_from_empty_to_head_then_partitions_ensure(
    empty_database: Database, tmp_path: Path
) -> None:
    """What the compose ``migrate`` service runs: the revisions make the schema and no
    partition, then the rotation makes this month and the configured months ahead."""
    _alembic(empty_database, "upgrade", "head", cwd=tmp_path)
    with empty_database.connect(autocommit=True) as conn:
        assert partition_names(conn) == set()
    before = month_start(datetime.now(UTC))
    _run(
        "callstore", empty_database, "partitions", "ensure",
        cwd=tmp_path, CALLSTORE_PARTITION_PREMAKE_MONTHS="2",
    )  # fmt: skip
    after = month_start(datetime.now(UTC))

    with empty_database.connect(autocommit=True) as conn:
        assert table_names(conn) == set(metadata.tables) | {"alembic_version"}
        assert alembic_versions(conn) == set(schema.heads())
        assert scalars(conn, "SELECT extname FROM pg_extension") >= {"vector"}
        # The current month and the two configured ahead, on each partitioned table.
        expected = [
            {partition_name(table, m) for table in PARTITIONED_TABLES for m in
             month_range(current, add_months(current, 2))}
            for current in {before, after}
        ]  # fmt: skip
        assert partition_names(conn) in expected
        partitioned = scalars(
            conn,
            "SELECT relname FROM pg_class WHERE relkind = 'p'"
            " AND relnamespace = 'public'::regnamespace",
        )
        assert partitioned == set(PARTITIONED_TABLES)
        triggers = scalars(
            conn,
            "SELECT tgrelid::regclass::text FROM pg_trigger"
            " WHERE NOT tgisinternal AND tgname LIKE '%%_set_updated_at'",
        )
        assert triggers == set(UPDATED_AT_TABLES)

    output = _alembic(empty_database, "check", cwd=tmp_path)
    assert "No new upgrade operations detected" in output
