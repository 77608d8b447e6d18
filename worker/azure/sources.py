"""The legacy sources, in the order a batch visits them.

The order is the order of foreign keys: calls link to behavioral tactics, customers and
organizations, organization members to customers, transcript entries to calls. Each round of
the migration finishes a source's pass before the next source's pass starts, so a call is
written after the customer it names whenever both were in Azure when the round began.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SourceKind(StrEnum):
    TABLE = "table"
    BLOB = "blob"


@dataclass(frozen=True, slots=True)
class Source:
    """An Azure table or blob container; ``name`` is its name in Azure and in our tables."""

    name: str
    kind: SourceKind


BEHAVIORAL_CONFIGS = Source("behavioral-configs", SourceKind.BLOB)
PROMPTS = Source("prompts", SourceKind.BLOB)
CUSTOMERS = Source("CustomerData", SourceKind.TABLE)
ORGANIZATIONS = Source("OrganizationData", SourceKind.TABLE)
CALL_HISTORY = Source("CallHistory", SourceKind.TABLE)
CALL_TRANSCRIPTS = Source("CallTranscripts", SourceKind.TABLE)

SOURCES: tuple[Source, ...] = (
    BEHAVIORAL_CONFIGS,
    PROMPTS,
    CUSTOMERS,
    ORGANIZATIONS,
    CALL_HISTORY,
    CALL_TRANSCRIPTS,
)
