"""The import rules in pyproject.toml ([tool.importlinter]) hold: the runtime client loads no
database driver, services no Celery or CLI, models nothing of ours, and only the roots import
``tasks``. A broken rule fails here with import-linter's report, which names each chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.application.use_cases import lint_imports
from importlinter.configuration import configure

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_every_import_contract_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    configure()  # what import-linter's own command line does first
    kept = lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    if not kept:
        pytest.fail(report, pytrace=False)
    assert "0 broken" in report
