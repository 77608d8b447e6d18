"""One pure function per legacy source: a record in, the row it becomes out.

Each function implements its part of ``shared/legacy-azure-format.md``, untidy cases included,
and raises ``Unmigratable`` with the reason when a record is beyond repair; the batch then
keeps the record in ``migration_rejects``. Nothing here touches a database or the network, so
each case is a unit test.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from models.enums import CallStatus, CallType, Direction, MessageRole, values
from worker.azure import sources
from worker.azure.oddities import ODDITIES_KEY, Oddities, kept_json
from worker.azure.readers import BlobRecord, Record, TableRecord
from worker.azure.values import (
    Unmigratable,
    choice,
    count,
    e164,
    extras,
    flag,
    json_object,
    json_or_text,
    last_four,
    money,
    no_nul,
    plain,
    raw_blob,
    raw_entity,
    text,
    when,
)

#: ``call_id = uuid5(CALL_NAMESPACE, call SID)``: the same SID is the same call, every run.
CALL_NAMESPACE = uuid.UUID("5b2272e9-5736-5c69-9e3f-f92e0c9876e1")
CALL_SID = re.compile(r"CA[0-9a-f]{32}")
_SEQUENCE = re.compile(r"\d{1,9}")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")

#: Legacy call status → the call store's status. ``no_answer`` has no status of its own: the
#: call ended; ``metadata.legacy_status`` keeps the original value of every call.
STATUS_MAP: dict[str, str] = {
    "in_progress": CallStatus.IN_PROGRESS.value,
    "completed": CallStatus.ENDED.value,
    "failed": CallStatus.ERROR.value,
    "no_answer": CallStatus.ENDED.value,
}
#: The status of a call whose legacy status is unknown: it is in the history, so it is over.
UNKNOWN_STATUS = CallStatus.ENDED.value
#: Legacy writers kept some times at whole seconds, others to the microsecond: an end up to
#: this long before the start is the same instant.
SAME_INSTANT = timedelta(seconds=1)
SPEAKER_ROLES: dict[str, str] = {
    "agent": MessageRole.ASSISTANT.value,
    "customer": MessageRole.USER.value,
    "system": MessageRole.SYSTEM.value,
}
ENTRY_TYPES = ("transcript", "tool", "event")
PROMPT_ENVIRONMENTS = ("development", "staging", "production")


@functools.lru_cache(maxsize=256)
def call_id_for(sid: str) -> uuid.UUID:
    """The call id of a SID (cached: a call's transcript entries come one after another)."""
    return uuid.uuid5(CALL_NAMESPACE, sid)


def derived_archetype(name: str) -> str:
    """``aggressive_anchor`` → ``Aggressive Anchor`` (what the legacy loader displayed)."""
    return " ".join(part.capitalize() for part in name.split("_") if part)


# -- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TacticRow:
    key: str
    name: str
    archetype: str
    description: str | None
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PromptRow:
    key: str
    name: str
    environment: str
    template: str
    sha256: str
    variables: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CustomerRow:
    key: str
    external_id: str
    phone_number: str | None
    name: str | None
    account_last_4: str | None
    postal_code: str | None
    balance: Decimal | None
    days_overdue: int
    segment: str
    language: str
    extra: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MemberRow:
    customer_key: str
    role: str


@dataclass(frozen=True, slots=True)
class OrganizationRow:
    key: str
    external_id: str
    name: str
    domain: str | None
    settings: dict[str, Any]
    members: tuple[MemberRow, ...]


@dataclass(frozen=True, slots=True)
class CallRow:
    key: str
    call_id: uuid.UUID
    sid: str
    legacy_customer_id: str
    call_type: str
    direction: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int | None
    conversation_id: str | None
    outcome: str | None
    agent_name: str | None
    organization_key: str | None
    tactic_name: str | None
    extra: dict[str, Any]
    #: The properties kept with an oddity (``extra["legacy_oddities"]`` says what was odd).
    oddities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntryRow:
    """A transcript entry; ``kind`` says which table it lands in."""

    key: str
    call_id: uuid.UUID
    sid: str
    sequence: int
    timestamp: datetime
    kind: str  # "message", "tool" or "event"
    role: str | None = None
    content: str | None = None
    tool_name: str | None = None
    request: Any = None
    response: Any = None
    request_text: str | None = None
    response_text: str | None = None
    success: bool | None = None
    duration_ms: int | None = None
    event_type: str | None = None
    event_data: Any = None
    event_data_text: str | None = None


Row = TacticRow | PromptRow | CustomerRow | OrganizationRow | CallRow | EntryRow


@dataclass(frozen=True, slots=True)
class Reject:
    source: str
    key: str
    raw: str
    reason: str
    timestamp: datetime | None = None


@dataclass(slots=True)
class Transformed:
    """A page's records after transformation: the rows and the rejects."""

    rows: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


# -- blobs -----------------------------------------------------------------------------------


def _blob(record: Record) -> BlobRecord:
    assert isinstance(record, BlobRecord)
    return record


def _table(record: Record) -> TableRecord:
    assert isinstance(record, TableRecord)
    return record


def _decode(body: bytes, what: str) -> str:
    """UTF-8 text; a leading byte-order mark (some legacy files have one) is dropped."""
    try:
        decoded = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Unmigratable(
            f"{what} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    return no_nul(decoded, what)


def behavioral_config(record: Record) -> TacticRow:
    """``behavioral-configs/<name>.json`` → ``behavioral_tactics``."""
    blob = _blob(record)
    if not blob.name.endswith(".json") or "/" in blob.name:
        raise Unmigratable("blob name is not <name>.json")
    name = blob.name.removesuffix(".json")
    if not name or len(name) > 100:
        raise Unmigratable("blob name is empty or longer than 100 characters")
    body = _decode(blob.body, "blob")
    try:
        config = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as error:
        raise Unmigratable(f"blob is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise Unmigratable(f"blob holds a JSON {type(config).__name__}, not an object")
    if "\\u0000" in body:
        raise Unmigratable("blob holds \\u0000, which jsonb cannot hold")
    archetype = text(config.get("archetype"), "archetype", max_length=100) or ""
    description = config.get("description")
    if description is not None and not isinstance(description, str):
        description = json.dumps(description, ensure_ascii=False)
    return TacticRow(
        key=blob.name,
        name=name,
        archetype=archetype.strip() or derived_archetype(name),
        description=description,
        config=config,
    )


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def prompt(record: Record) -> PromptRow:
    """``prompts/<name>.txt`` → ``system_prompts`` (the version is decided when writing)."""
    blob = _blob(record)
    if not blob.name.endswith(".txt") or "/" in blob.name:
        raise Unmigratable("blob name is not <name>.txt")
    name = blob.name.removesuffix(".txt")
    if not name or len(name) > 100:
        raise Unmigratable("blob name is empty or longer than 100 characters")
    template = _decode(blob.body, "prompt")
    metadata = {key.lower(): value for key, value in blob.metadata.items()}
    environment = choice(
        metadata.get("environment"), "environment", PROMPT_ENVIRONMENTS, default="production"
    )
    variables = dict.fromkeys(_PLACEHOLDER.findall(template))
    return PromptRow(
        key=blob.name,
        name=name,
        environment=environment,
        template=template,
        sha256=hashlib.sha256(template.encode("utf-8")).hexdigest(),
        variables=variables,
    )


# -- tables ----------------------------------------------------------------------------------

_CUSTOMER_PROPERTIES = frozenset(
    {
        "phone_number",
        "name",
        "account_last_4",
        "postal_code",
        "balance",
        "days_overdue",
        "segment",
        "language",
    }
)


def _key(value: str, name: str) -> str:
    no_nul(value, name)
    if not value or len(value) > 255:
        raise Unmigratable(f"{name} is empty or longer than 255 characters")
    return value


def customer(record: Record) -> CustomerRow:
    """A ``CustomerData`` entity → ``customers`` (``external_id`` = PartitionKey)."""
    entity = _table(record)
    if entity.row_key != "profile":
        raise Unmigratable(f"RowKey {entity.row_key[:40]!r} is not 'profile'")
    p = entity.properties
    return CustomerRow(
        key=entity.key,
        external_id=_key(entity.partition_key, "PartitionKey"),
        phone_number=e164(p.get("phone_number"), "phone_number"),
        name=text(p.get("name"), "name", max_length=255),
        account_last_4=last_four(p.get("account_last_4"), "account_last_4"),
        postal_code=text(p.get("postal_code"), "postal_code", max_length=16),
        balance=money(p.get("balance"), "balance"),
        days_overdue=count(p.get("days_overdue"), "days_overdue", default=0) or 0,
        segment=choice(p.get("segment"), "segment", ("premium", "standard"), default="standard"),
        language=choice(p.get("language"), "language", ("en", "fr"), default="en"),
        extra=extras(p, _CUSTOMER_PROPERTIES),
    )


def _members(value: Any) -> tuple[MemberRow, ...]:
    found = text(value, "members")
    if found is None or found.strip() == "":
        return ()
    parsed, rest = json_or_text(found, "members")
    if rest is not None or not isinstance(parsed, list):
        raise Unmigratable("members is not a JSON array")
    members: dict[str, MemberRow] = {}
    for index, item in enumerate(parsed):
        if not isinstance(item, dict):
            raise Unmigratable(f"members[{index}] is not an object")
        customer_key = text(item.get("customer_id"), f"members[{index}].customer_id")
        if not customer_key:
            raise Unmigratable(f"members[{index}] has no customer_id")
        role = text(item.get("role"), f"members[{index}].role", max_length=50) or "member"
        members[customer_key] = MemberRow(customer_key, role)
    return tuple(members.values())


def organization(record: Record) -> OrganizationRow:
    """An ``OrganizationData`` entity → ``organizations`` and ``organization_members``."""
    entity = _table(record)
    if entity.row_key != "org":
        raise Unmigratable(f"RowKey {entity.row_key[:40]!r} is not 'org'")
    p = entity.properties
    return OrganizationRow(
        key=entity.key,
        external_id=_key(entity.partition_key, "PartitionKey"),
        name=text(p.get("name"), "name", max_length=255, required=True) or "",
        domain=text(p.get("domain"), "domain", max_length=255) or None,
        settings=json_object(p.get("settings"), "settings"),
        members=_members(p.get("members")),
    )


_CALL_PROPERTIES = frozenset(
    {
        "call_type",
        "direction",
        "status",
        "start_time",
        "end_time",
        "duration_seconds",
        "conversation_id",
        "outcome",
        "behavioral_tactic",
        "organization_id",
        "agent_name",
    }
)


def _sid(value: str, name: str) -> str:
    if not CALL_SID.fullmatch(value):
        raise Unmigratable(f"{name} {value[:50]!r} is not a call SID (CA + 32 lowercase hex)")
    return value


def _seconds(delta: timedelta) -> str:
    """``600``, ``1.000001``: a duration as an operator reads it."""
    return format(Decimal(str(delta.total_seconds())).normalize(), "f")


def call(record: Record) -> CallRow:
    """A ``CallHistory`` entity → ``calls`` (``source='azure'``, ``call_id`` from the SID).

    Only a key or a ``start_time`` that cannot be read makes a reject: any other odd field is
    kept as well as it can be and noted in ``metadata.legacy_oddities`` (``oddities``)."""
    entity = _table(record)
    sid = _sid(entity.row_key, "RowKey")
    legacy_customer_id = _key(entity.partition_key, "PartitionKey")
    p = entity.properties
    started = when(p.get("start_time"), "start_time", required=True)
    assert started is not None
    odd = Oddities()
    ended = odd.time("end_time", p.get("end_time"))
    if ended is not None and ended < started:
        if started - ended <= SAME_INSTANT:
            ended = started  # a writer that kept whole seconds: the same instant
        else:
            odd.note(
                "end_time",
                p.get("end_time"),
                f"end_time is {_seconds(started - ended)} s before start_time; left empty",
            )
            ended = None
    duration = odd.count("duration_seconds", p.get("duration_seconds"))
    if duration is None and ended is not None:
        duration = int((ended - started).total_seconds())
    raw_status = plain(p.get("status"))
    legacy_status = odd.choice(
        "status", raw_status, tuple(STATUS_MAP), default="completed", stored_as=UNKNOWN_STATUS
    )
    readable = raw_status in (None, "") or (
        isinstance(raw_status, str) and raw_status.strip().lower() in STATUS_MAP
    )
    organization_key = odd.key("organization_id", p.get("organization_id"), max_length=255)
    tactic_name = odd.key("behavioral_tactic", p.get("behavioral_tactic"), max_length=100)
    call_type = odd.choice(
        "call_type", p.get("call_type"), values(CallType), default=CallType.REAL_CALL.value
    )
    direction = odd.choice(
        "direction", p.get("direction"), values(Direction), default=Direction.OUTBOUND.value
    )
    conversation_id = odd.text("conversation_id", p.get("conversation_id"), max_length=255)
    outcome = odd.text("outcome", p.get("outcome"), max_length=100)
    agent_name = odd.text("agent_name", p.get("agent_name"), max_length=255)
    metadata: dict[str, Any] = {
        **odd.extras(p, _CALL_PROPERTIES),
        # The original value of every call; an unknown one as it was written.
        "legacy_status": legacy_status if readable else kept_json(raw_status),
    }
    if organization_key is not None:
        metadata["legacy_organization_id"] = organization_key
    if tactic_name is not None:
        metadata["legacy_behavioral_tactic"] = tactic_name
    if odd.found:
        metadata[ODDITIES_KEY] = odd.found
    return CallRow(
        key=entity.key,
        call_id=call_id_for(sid),
        sid=sid,
        legacy_customer_id=legacy_customer_id,
        call_type=call_type,
        direction=direction,
        status=STATUS_MAP[legacy_status] if readable else UNKNOWN_STATUS,
        started_at=started,
        ended_at=ended,
        duration_seconds=duration,
        conversation_id=conversation_id or None,
        outcome=outcome or None,
        agent_name=agent_name or None,
        organization_key=organization_key,
        tactic_name=tactic_name,
        extra=metadata,
        oddities=odd.names(),
    )


def transcript_entry(record: Record) -> EntryRow:
    """A ``CallTranscripts`` entity → a message, a tool execution or an event of its call."""
    entity = _table(record)
    sid = _sid(entity.partition_key, "PartitionKey")
    if not _SEQUENCE.fullmatch(entity.row_key):
        raise Unmigratable(f"RowKey {entity.row_key[:40]!r} is not a sequence number")
    p = entity.properties
    stamp = when(p.get("timestamp"), "timestamp", required=True)
    assert stamp is not None
    entry_type = choice(p.get("entry_type"), "entry_type", ENTRY_TYPES, default="transcript")
    base: dict[str, Any] = {
        "key": entity.key,
        "call_id": call_id_for(sid),
        "sid": sid,
        "sequence": int(entity.row_key),
        "timestamp": stamp,
    }
    if entry_type == "transcript":
        speaker = choice(p.get("speaker"), "speaker", tuple(SPEAKER_ROLES), default="")
        if not speaker:
            raise Unmigratable("speaker is missing")
        return EntryRow(
            kind="message",
            role=SPEAKER_ROLES[speaker],
            content=text(p.get("text"), "text") or "",
            **base,
        )
    if entry_type == "tool":
        request, request_text = json_or_text(p.get("tool_request"), "tool_request")
        response, response_text = json_or_text(p.get("tool_response"), "tool_response")
        return EntryRow(
            kind="tool",
            tool_name=text(p.get("tool_name"), "tool_name", max_length=255, required=True),
            request=request,
            response=response,
            request_text=request_text,
            response_text=response_text,
            success=flag(p.get("success"), "success"),
            duration_ms=count(p.get("duration_ms"), "duration_ms"),
            **base,
        )
    event_data, event_data_text = json_or_text(p.get("event_data"), "event_data")
    return EntryRow(
        kind="event",
        event_type=text(p.get("event_type"), "event_type", max_length=100, required=True),
        event_data=event_data,
        event_data_text=event_data_text,
        **base,
    )


TRANSFORMS: Mapping[str, Callable[[Record], Row]] = {
    sources.BEHAVIORAL_CONFIGS.name: behavioral_config,
    sources.PROMPTS.name: prompt,
    sources.CUSTOMERS.name: customer,
    sources.ORGANIZATIONS.name: organization,
    sources.CALL_HISTORY.name: call,
    sources.CALL_TRANSCRIPTS.name: transcript_entry,
}


def raw_text(record: Record) -> str:
    if isinstance(record, BlobRecord):
        return raw_blob(record.body)
    return raw_entity(record.partition_key, record.row_key, record.timestamp, record.properties)


def transform_page(source: str, records: list[Record]) -> Transformed:
    """Rows and rejects of ``records``. A record that breaks a transform in a way nobody foresaw
    is a reject too (with the error), never a failed batch that would stop the migration."""
    convert = TRANSFORMS[source]
    result = Transformed()
    for record in records:
        try:
            result.rows.append(convert(record))
        except Unmigratable as error:
            result.rejects.append(
                Reject(source, record.key, raw_text(record), str(error), record.timestamp)
            )
        except Exception as error:  # a bug must not wedge the migration on one record
            reason = f"unexpected {type(error).__name__} while transforming: {error}"
            result.rejects.append(
                Reject(source, record.key, raw_text(record), reason, record.timestamp)
            )
    return result
