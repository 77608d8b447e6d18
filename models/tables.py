"""Every table of the schema, imported in one place so ``metadata`` is complete.

Alembic's ``env.py`` and the tests import this module; the runtime never does.
"""

from __future__ import annotations

from models.accounts import Customer, Organization, OrganizationMember
from models.agent_config import AgentConfig, BehavioralTactic, SystemPrompt
from models.base import PARTITIONED_TABLES, UPDATED_AT_TABLES, metadata
from models.calls import (
    Call,
    CallAnalysis,
    CallEvent,
    CallExtractedVariables,
    CallRagChunk,
    CallToolExecution,
    CallTranscript,
    CallUserInterruption,
)
from models.consistency import CallAnnouncement, ConsistencyDiscrepancy, ConsistencyReport
from models.migration import MigrationCheckpoint, MigrationReject
from models.operations import ArchivedPartition, CallConflict, DeadLetter, JobRun
from models.payload import EMBEDDING_DIMENSIONS
from models.timeline import CallMessage, CallMetric, CallRagRetrieval, CallTransition

#: Seed 001's spellings of the RAG tables' classes, so its code imports them unchanged.
CallRAGRetrieval = CallRagRetrieval
CallRAGChunk = CallRagChunk

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
    "MigrationCheckpoint",
    "MigrationReject",
    "Organization",
    "OrganizationMember",
    "SystemPrompt",
    "metadata",
]
