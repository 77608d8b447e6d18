"""One call's data as the runtime holds it, and the payload built from it.

``CallRecorder`` fills a ``CallData`` as the call goes; a journal replays its records into one
after a crash (``worker.client.recovery``). Both build their payloads here, so a recovered call
has exactly the shape of a finalized one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.payload import SCHEMA_VERSION, TIMELINE_FIELDS

#: The payload's call-level fields a runtime sets, in payload order (``analysis`` and the
#: count of replaced characters included; revision and times are given when a payload is built).
FIELDS: tuple[str, ...] = (
    "call_id", "tenant_id", "agent_id", "agent_version", "agent_name", "from_number",
    "to_number", "twilio_call_sid", "twilio_stream_sid", "recording_enabled", "recording_sid",
    "recording_url", "direction", "status", "error_message", "started_at", "initial_node",
    "final_node", "replaced_characters", "analysis",
)  # fmt: skip


@dataclass(slots=True)
class CallData:
    """The call-level fields (``FIELDS``) and the entries of each timeline list.

    Entries are appended and never changed afterwards, and fields are replaced whole, so another
    thread may build a payload (a checkpoint) while the event loop records: copying a list or a
    dict is one step under the GIL.
    """

    fields: dict[str, Any]
    lists: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in TIMELINE_FIELDS}
    )

    def payload(
        self,
        *,
        revision: int,
        status: str,
        ended_at: str | None,
        finalized_at: str,
        error_message: str | None = None,
    ) -> dict[str, Any]:
        """The call as it stands, in the shape of ``models.payload.CallPayload``."""
        body: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "revision": revision}
        body.update(self.fields)
        body["status"] = status
        if error_message is not None:
            body["error_message"] = error_message
        body["ended_at"] = ended_at
        body["finalized_at"] = finalized_at
        for name, entries in self.lists.items():
            body[name] = list(entries)
        return body

    def last_stamp(self) -> str:
        """The latest entry's timestamp (ISO text), or the start when there is none."""
        latest = self.fields["started_at"]
        for entries in self.lists.values():
            if entries:
                latest = max(latest, entries[-1]["timestamp"], key=datetime.fromisoformat)
        return str(latest)
