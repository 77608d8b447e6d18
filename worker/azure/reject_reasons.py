"""What an operator does about each kind of reject.

A reject's ``reason`` is written by the transform or the writer that refused the record; this
module sorts the reasons into a few kinds, each with the action that resolves it. The
``callstore migrate azure rejects`` command prints them, and ``docs/migration.md`` lists the same
kinds (a test holds the two together).

Most rejects are resolved the same way: correct the record in Azure. The service then gives it a
newer ``Timestamp``, the next pass reads it, migrates it, and marks the reject resolved. Records
that a newer callstore would take (after an upgrade) are read again by
``callstore migrate azure rescan``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.azure import sources

_CALLS = (sources.CALL_HISTORY.name,)
_TABLES = tuple(s.name for s in sources.SOURCES if s.kind is sources.SourceKind.TABLE)
_BLOBS = tuple(s.name for s in sources.SOURCES if s.kind is sources.SourceKind.BLOB)
_ALL = _TABLES + _BLOBS


@dataclass(frozen=True, slots=True)
class RejectKind:
    name: str
    sources: tuple[str, ...]
    pattern: re.Pattern[str]
    meaning: str
    action: str


FIX_IN_AZURE = (
    "correct the record in Azure: its Timestamp moves, the next pass migrates it and marks this"
    " reject resolved"
)
RESCAN = "callstore migrate azure rescan --source {source}"

KINDS: tuple[RejectKind, ...] = (
    RejectKind(
        "call_start_time",
        _CALLS,
        re.compile(r"^start_time "),
        "the call's start cannot be read; its transcript entries, if any, are on a call made"
        " from them (metadata.legacy_origin = 'transcripts_only'), without the customer link,"
        " direction and outcome of this entity",
        "set start_time on the entity in Azure (an ISO-8601 time; the call's first transcript"
        " entry or Twilio's call log gives it): the next pass migrates it onto the same call and"
        " resolves this reject",
    ),
    RejectKind(
        "duplicate_call_sid",
        _CALLS,
        re.compile(r"^the call SID is already migrated"),
        "two CallHistory entities name the same call SID; the first one read is the call",
        "compare this entity (rejects --key) with the stored call: if the stored one is right,"
        " nothing to do (this reject keeps the other's values). If this one is right: delete the"
        " other entity in Azure, delete the stored call (DELETE FROM calls WHERE source ="
        " 'azure' AND twilio_call_sid = '<sid>'), then callstore check --full --repair"
        " --no-dry-run migrates the call again from this entity",
    ),
    RejectKind(
        "unreadable_key",
        _ALL,
        re.compile(
            r"^(RowKey|PartitionKey) .*(is not a call SID|is not a sequence number|is not 'profile'"
            r"|is not 'org')|^PartitionKey is empty|^blob name "
        ),
        "the record's key does not name what it must (a call SID, a sequence number, a"
        " customer, profile/org, <name>.json or <name>.txt)",
        "write the record again under the right key in Azure (and delete the bad one): the next"
        " pass migrates the new one. A record that is not data (a test leftover) can stay here:"
        " this reject keeps it whole",
    ),
    RejectKind(
        "member_without_customer",
        (sources.ORGANIZATIONS.name,),
        re.compile(r"names no migrated customer"),
        "the organization landed without this member: its customer is not migrated",
        "migrate the customer (write or correct its CustomerData entity), then "
        + RESCAN.format(source=sources.ORGANIZATIONS.name)
        + " (or touch the organization's entity) so the member is added",
    ),
    RejectKind(
        "refused_by_postgresql",
        _ALL,
        re.compile(r"^PostgreSQL refused it"),
        "a value the transforms did not foresee, which PostgreSQL refused",
        "report it with the raw record (rejects --key): after the upgrade that reads it, " + RESCAN,
    ),
    RejectKind(
        "transform_error",
        _ALL,
        re.compile(r"^unexpected \w+ while transforming"),
        "a fault in the migration's code, met on this record",
        "report it with the raw record (rejects --key): after the upgrade that fixes it, " + RESCAN,
    ),
    RejectKind(
        "unreadable_document",
        _ALL,
        re.compile(
            r"is not UTF-8|is not valid JSON|holds a JSON|holds \\u0000|is not a JSON"
            r"|^members\["
        ),
        "a blob or a JSON property that cannot be read (not UTF-8, not JSON, not the expected"
        " shape)",
        "upload the blob again, or rewrite the property, as valid UTF-8 JSON: " + FIX_IN_AZURE,
    ),
    RejectKind(
        "missing_field",
        _TABLES,
        re.compile(r" is missing$"),
        "a property the record cannot land without (an entry's timestamp, speaker, tool_name or"
        " event_type; an organization's name)",
        "add the property to the entity in Azure: " + FIX_IN_AZURE,
    ),
    RejectKind(
        "bad_value",
        _ALL,
        re.compile(r""),
        "a property holds a value the contract does not allow (the reason names it)",
        FIX_IN_AZURE,
    ),
)


def kind_of(source: str, reason: str) -> RejectKind:
    """The kind of a reject; ``bad_value`` when no other kind matches."""
    for kind in KINDS:
        if source in kind.sources and kind.pattern.search(reason):
            return kind
    return KINDS[-1]


def action(source: str, reason: str) -> str:
    """What to do about one reject, with its source filled in."""
    return kind_of(source, reason).action.replace("{source}", source)
