"""``callstore check`` as an operator runs it, a process of its own: exit codes 0/1/2, the dry
run, the repair, the history, and why it could not run (the checks themselves are in
``tests/integration/test_consistency.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import settings_env
from worker.settings import Settings

CALLSTORE = str(Path(sys.executable).with_name("callstore"))


def _cli(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLSTORE, "check", *args],
        env=settings_env(settings, COLUMNS="250"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_exit_codes_dry_run_and_repair(
    settings: Settings, calls: list[dict[str, Any]], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    clean = _cli(settings, tmp_path, "--full")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    victim = calls[0]["call_id"]
    conn.execute("UPDATE calls SET total_llm_tokens = 1 WHERE call_id = %s", (victim,))
    conn.execute("DELETE FROM call_transcripts WHERE call_id = %s", (calls[1]["call_id"],))
    found = _cli(settings, tmp_path, "--full", "--json")
    assert found.returncode == 1
    assert victim in found.stdout and "missing_transcript" in found.stdout

    dry = _cli(settings, tmp_path, "--full", "--repair")
    assert dry.returncode == 1 and "would repair" in dry.stderr
    assert conn.execute(
        "SELECT total_llm_tokens FROM calls WHERE call_id = %s", (victim,)
    ).fetchone() == (1,)

    fixed = _cli(settings, tmp_path, "--full", "--repair", "--no-dry-run")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired: recomputed the summaries of 1 call(s)" in fixed.stderr
    assert _cli(settings, tmp_path, "--full").returncode == 0

    history = _cli(settings, tmp_path, "--history", "--json")
    assert history.returncode == 0 and '"discrepancies"' in history.stdout


def test_cli_says_why_it_could_not_run(settings: Settings, tmp_path: Path) -> None:
    broken = settings.model_copy(
        update={
            "database_url": settings.database_url.__class__(
                "postgresql://nobody@/nowhere?host=/nonexistent"
            )
        }
    )
    result = _cli(broken, tmp_path)
    assert result.returncode == 2
    assert "check could not run" in result.stderr
