"""What importing the runtime client loads: ``CallRecorder`` on demand, the old path with a
warning."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from worker.client import delivery, recorder

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_exports_the_recorder() -> None:
    from worker.client import CallRecorder

    assert CallRecorder is recorder.CallRecorder


def test_the_settlement_module_loads_no_celery() -> None:
    """The workers import ``worker.client.settlement``; that must not build the client's app."""
    code = (
        "import sys, worker.client.settlement, worker.client.queues\n"
        "loaded = sorted(m for m in ('celery', 'worker.client.recorder') if m in sys.modules)\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_the_old_module_warns_and_still_exports_the_recorder() -> None:
    sys.modules.pop("worker.recorder", None)  # its body, and so the warning, runs once a process
    with pytest.warns(DeprecationWarning, match=r"worker\.client"):
        old = importlib.import_module("worker.recorder")
    assert old.CallRecorder is recorder.CallRecorder
    assert old.wait_for_announcements is delivery.wait_for_announcements
    assert old.utc_now is recorder.utc_now


#: An import of the deprecated module in any of its spellings.
_OLD_IMPORT = re.compile(r"^\s*(from\s+worker\.recorder\s+import|import\s+worker\.recorder\b"
                         r"|from\s+worker\s+import\s+.*\brecorder\b)", re.M)  # fmt: skip


def test_nothing_outside_the_packages_imports_the_old_module() -> None:
    """Inside worker/, tasks/ and models/ an import contract forbids it; here the rest."""
    here = Path(__file__).resolve()
    others = [ROOT / "beat_schedule.py", *ROOT.glob("alembic/**/*.py")]
    others += [*ROOT.glob("bench/**/*.py"), *ROOT.glob("tests/**/*.py")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in others
        if path != here and _OLD_IMPORT.search(path.read_text())
    ]
    assert offenders == []
