"""Tables (``models.tables``) and the payload contract (``models.payload``).

This package imports nothing of ours. The runtime side imports only ``models.payload`` and
``models.enums``, so importing the package itself must stay free of database libraries: the
tables it exports (``from models import Call, CallRAGRetrieval, MetricType``, as seed 001's
code imports them from its ``app.models.database``) are imported on first use, not with the
package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.enums import MetricType
    from models.tables import (
        EMBEDDING_DIMENSIONS,
        PARTITIONED_TABLES,
        UPDATED_AT_TABLES,
        AgentConfig,
        ArchivedPartition,
        BehavioralTactic,
        Call,
        CallAnalysis,
        CallAnnouncement,
        CallConflict,
        CallEvent,
        CallExtractedVariables,
        CallMessage,
        CallMetric,
        CallRAGChunk,
        CallRagChunk,
        CallRAGRetrieval,
        CallRagRetrieval,
        CallToolExecution,
        CallTranscript,
        CallTransition,
        CallUserInterruption,
        ConsistencyDiscrepancy,
        ConsistencyReport,
        Customer,
        DeadLetter,
        JobRun,
        MigrationCheckpoint,
        MigrationReject,
        Organization,
        OrganizationMember,
        SystemPrompt,
        metadata,
    )

#: The module each exported name lives in; ``__getattr__`` imports it on first use.
_HOMES = {"MetricType": "models.enums"}

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "PARTITIONED_TABLES",
    "UPDATED_AT_TABLES",
    "AgentConfig",
    "ArchivedPartition",
    "BehavioralTactic",
    "Call",
    "CallAnalysis",
    "CallAnnouncement",
    "CallConflict",
    "CallEvent",
    "CallExtractedVariables",
    "CallMessage",
    "CallMetric",
    "CallRAGChunk",
    "CallRAGRetrieval",
    "CallRagChunk",
    "CallRagRetrieval",
    "CallToolExecution",
    "CallTranscript",
    "CallTransition",
    "CallUserInterruption",
    "ConsistencyDiscrepancy",
    "ConsistencyReport",
    "Customer",
    "DeadLetter",
    "JobRun",
    "MetricType",
    "MigrationCheckpoint",
    "MigrationReject",
    "Organization",
    "OrganizationMember",
    "SystemPrompt",
    "metadata",
]


if not TYPE_CHECKING:  # for mypy the names are the imports above, so a typo is an error

    def __getattr__(name: str) -> Any:
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_HOMES.get(name, "models.tables")), name)
        globals()[name] = value
        return value
