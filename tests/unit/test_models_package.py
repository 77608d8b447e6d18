"""The models package exports the tables under seed 001's names, without loading them eagerly:
the runtime imports ``models.payload`` and ``models.enums`` and must not pull in a database
library with the package."""

from __future__ import annotations

import subprocess
import sys

import pytest

import models
from models import enums, tables


def test_importing_the_package_loads_no_database_library() -> None:
    code = (
        "import sys, models, models.payload, models.enums\n"
        "loaded = sorted(m for m in ('sqlalchemy', 'sqlmodel', 'psycopg', 'models.tables')"
        " if m in sys.modules)\n"
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_seed_001s_imports_work_and_name_our_tables() -> None:
    from models import (
        Call,
        CallAnalysis,
        CallMetric,
        CallRAGChunk,
        CallRAGRetrieval,
        CallTranscript,
        CallTransition,
        MetricType,
    )

    assert (Call, CallAnalysis, CallMetric, CallTranscript, CallTransition) == (
        tables.Call, tables.CallAnalysis, tables.CallMetric, tables.CallTranscript,
        tables.CallTransition,
    )  # fmt: skip
    assert CallRAGRetrieval is tables.CallRagRetrieval
    assert CallRAGChunk is tables.CallRagChunk
    assert MetricType is enums.MetricType


def test_the_package_exports_every_table_and_nothing_unknown() -> None:
    assert set(models.__all__) == {*tables.__all__, "MetricType"}
    with pytest.raises(AttributeError, match="no attribute 'Calls'"):
        _ = models.Calls  # type: ignore[attr-defined]
