"""A wrong or missing setting stops every entry point with one clear line, never a traceback.

Each entry point runs as a real process, from an empty directory (no .env, no stack.env) and
with no CALLSTORE_* variable but the ones a case sets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.migrations import ALEMBIC_INI
from worker.settings import ENV_PREFIX

BIN = Path(sys.executable).parent
GOOD = {
    "CALLSTORE_DATABASE_URL": "postgresql://callstore@db.invalid:5432/callstore",
    "CALLSTORE_BROKER_URL": "redis://redis.invalid:6379/0",
}

ENTRY_POINTS = {
    "cli": [str(BIN / "callstore"), "dead-letter", "list"],
    "worker": [str(BIN / "celery"), "-A", "worker.celery_app", "worker", "-Q", "calls"],
    "migrate": [str(BIN / "alembic"), "-c", str(ALEMBIC_INI), "upgrade", "head"],
}

CASES: dict[str, tuple[dict[str, str | None], str]] = {
    "missing-database-url": ({"CALLSTORE_DATABASE_URL": None}, "CALLSTORE_DATABASE_URL"),
    "wrong-database-scheme": (
        {"CALLSTORE_DATABASE_URL": "mysql://callstore@db.invalid/callstore"},
        "CALLSTORE_DATABASE_URL",
    ),
    "wrong-broker-scheme": (
        {"CALLSTORE_BROKER_URL": "amqp://guest@rabbit.invalid//"},
        "CALLSTORE_BROKER_URL",
    ),
    "negative-retention": ({"CALLSTORE_RETENTION_DAYS": "-1"}, "CALLSTORE_RETENTION_DAYS"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_bad_setting_gives_one_line_naming_it(entry_point: str, case: str, tmp_path: Path) -> None:
    changes, variable = CASES[case]
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(GOOD)
    for key, value in changes.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value

    result = subprocess.run(
        ENTRY_POINTS[entry_point],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert lines[0].startswith("callstore: invalid configuration:")
    # The value itself (possibly a secret) is never echoed.
    for value in changes.values():
        if value is not None and value != "-1":
            assert value not in result.stderr
