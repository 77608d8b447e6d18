"""Call announcements: the runtime says "this call started", the finalize says "done".

An announcement that outlives its call's finalize threshold means the runtime died mid-call;
``worker.consistency`` reports it. The finalize transaction deletes the call's announcement
(``worker.calls.persist``), and an announcement arriving after its call was finalized (it was spooled,
say) is not stored at all.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import ValidationError

from models.payload import CallAnnouncementPayload
from worker.calls.validation import describe
from worker.errors import PayloadInvalid

_RECORD = """
INSERT INTO call_announcements (call_id, tenant_id, agent_id, started_at)
SELECT %(call_id)s, %(tenant_id)s, %(agent_id)s, %(started_at)s
 WHERE NOT EXISTS (SELECT 1 FROM calls WHERE call_id = %(call_id)s)
ON CONFLICT (call_id) DO NOTHING
"""


def validate_announcement(raw: Any) -> CallAnnouncementPayload:
    try:
        return CallAnnouncementPayload.model_validate(raw)
    except ValidationError as error:
        raise PayloadInvalid(describe(error)) from error


def record_announcement(
    conn: psycopg.Connection[Any], announcement: CallAnnouncementPayload
) -> bool:
    """Store the announcement in ``conn``'s transaction; False if the call is already finalized
    or was announced before."""
    cursor = conn.execute(_RECORD, announcement.model_dump())
    return cursor.rowcount == 1
