"""Realistic legacy Azure data, written through the official SDKs (into Azurite, usually).

Two parts:

* ``write_cases``: a fixed set of records, one or more for every untidy case of
  ``shared/legacy-azure-format.md`` (and a few records beyond repair), under known keys, so
  tests can check each migrated value field by field;
* ``write_bulk``: many realistic records from a seed (the same seed gives the same data), with
  the same untidy cases mixed in at production-like rates, for the benchmark and demos.

``write_arrivals`` plays the dual-write period: new calls, entries appended to calls already
written, a new customer, a changed prompt and an unchanged re-upload.

``python -m worker.dev.legacy_data --calls N`` fills the account of
``CALLSTORE_AZURE_CONNECTION_STRING`` (``--arrivals`` adds the dual-write arrivals).
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import EdmType, EntityProperty, TableClient

from worker.azure import sources
from worker.azure.client import AzureStorage

BOM = b"\xef\xbb\xbf"
BASE_TIME = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def sid(n: int) -> str:
    """A deterministic Twilio call SID."""
    return "CA" + uuid.uuid5(uuid.NAMESPACE_OID, f"call-{n}").hex


# -- the cases -------------------------------------------------------------------------------

C_NEW = "3f2a9c4e-7b1d-4e8a-9c3b-5d6e7f8a9b0c"  # newer row: a UUID, clean values, extras
C_OLD = "cust-000123"  # older row: formatted phone, int last-4, string balance, defaults
C_DOTS = "cust-000456"  # older row: dotted phone, last-4 of one digit
C_BAD_PHONE = "cust-000789"  # beyond repair: a phone number that is not one
C_UNKNOWN = "cust-404404"  # named by calls, never written to CustomerData
C_ARRIVING = "cust-000999"  # written during the dual-write period, with a call

ORG_ACME = "org-acme"
ORG_BARE = "org-bare"
ORG_GHOST = "org-ghost"  # a member naming no customer
ORG_BROKEN = "org-broken"  # settings that are not JSON

CALL_FULL = sid(1)  # every property, DateTime times, a transcript with every entry kind
CALL_OLD = sid(2)  # older row: ISO strings without offset, duration as a string, defaults
CALL_DERIVED = sid(3)  # times with an offset, no duration: derived
CALL_NO_ANSWER = sid(4)
CALL_FAILED = sid(5)
CALL_IN_PROGRESS = sid(6)
CALL_UNKNOWN_CUSTOMER = sid(7)  # PartitionKey names no customer; an unknown tactic
CALL_BAD_START = sid(8)  # beyond repair (start_time); its transcript still lands
CALL_ORPHAN = sid(9)  # transcript entries only, no CallHistory entity
CALL_ARRIVING = sid(10)  # dual-write arrival
CALL_ARRIVING_CUSTOMER = sid(11)  # dual-write arrival, for the arriving customer
CALL_WHOLE_SECONDS = sid(12)  # end_time kept at whole seconds: 0.6 s "before" the start
CALL_ODD = sid(13)  # odd fields (status, direction, type, duration, end, text types): kept
BAD_SID = "CA-not-a-sid"

TACTICS = (
    "aggressive_anchor", "empathetic_gradual", "balanced_progression", "stern",
    "collaborative_problem_solver", "deadline_driven", "hardship_aware", "friendly_reminder",
    "firm_but_fair", "settlement_offer", "payment_plan_first", "escalation_ready",
    "soft_touch", "consequence_framing", "loyalty_appeal",
)  # fmt: skip
BROKEN_CONFIG = "half_uploaded.json"
BAD_PROMPT = "legacy_latin1.txt"

SYSTEM_PROMPT = (
    "You are Alex from TD Bank calling about account management.\n\n"
    "Current Context:\n- Customer: {{customer_name}}\n- Balance: ${{balance}}\n"
    "- Days Overdue: {{days_overdue}}\n\nInstructions:\n1. Verify identity before discussing"
    " the account\n2. Use tools for all operations\n3. Follow compliance requirements\n"
)
SYSTEM_PROMPT_V2 = SYSTEM_PROMPT + "4. Offer a payment plan before a settlement.\n"
PREMIUM_PROMPT = "Bonjour {{customer_name}} — merci d'être client Premium. Solde : {{balance}} $.\n"
OVERDUE_PROMPT = "The account is {{ days_overdue }} days overdue. Stay calm and factual.\n"

#: A long transcript text: the service's 64 KiB property limit is 32 K UTF-16 code units.
LONG_TEXT = ("Je comprends votre situation — prenons le temps d'en parler. " * 520)[:31_000]


@dataclass
class GeneratedCounts:
    """How many records were written per source."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, source: str, count: int = 1) -> None:
        self.counts[source] += count

    def merge(self, other: GeneratedCounts) -> GeneratedCounts:
        for source, count in other.counts.items():
            self.counts[source] += count
        return self

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _tactic_config(name: str, rng: random.Random, *, archetype: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "urgency_level": rng.randint(1, 5),
        "empathy_index": rng.randint(1, 5),
        "persistence_level": rng.randint(1, 5),
        "authority_level": rng.randint(1, 5),
        "opening_strategy": rng.choice(["direct_assertive", "warm_rapport", "question_led"]),
        "tactics": [
            {"name": "High Anchor", "description": "Start with the full balance", "timing": "early"},
            {"name": "Deadline Pressure", "description": "Time-sensitive consequences", "timing": "mid"},
        ],
    }  # fmt: skip
    if archetype:
        config["archetype"] = name.replace("_", " ").title()
        config["description"] = f"The {name.replace('_', ' ')} approach."
    return config


def _ensure_containers(storage: AzureStorage) -> None:
    for source in sources.SOURCES:
        try:
            if source.kind is sources.SourceKind.TABLE:
                storage.tables.create_table(source.name)
            else:
                storage.blobs.create_container(source.name)
        except ResourceExistsError:
            pass


def _upload(
    storage: AzureStorage,
    container: str,
    name: str,
    body: bytes,
    metadata: Mapping[str, str] | None = None,
) -> None:
    storage.container(container).upload_blob(
        name, body, overwrite=True, metadata=dict(metadata) if metadata else None
    )


def _write_entities(
    client: TableClient, entities: Iterable[dict[str, Any]], *, workers: int = 4
) -> int:
    """Upsert ``entities``, 100 per transaction within a partition, partitions in parallel."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entity in entities:
        groups[entity["PartitionKey"]].append(entity)

    def write(group: list[dict[str, Any]]) -> int:
        for start in range(0, len(group), 100):
            chunk = group[start : start + 100]
            if len(chunk) == 1:
                client.upsert_entity(chunk[0])
            else:
                client.submit_transaction([("upsert", e) for e in chunk])
        return len(group)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(write, groups.values()))


def _entry(call_sid: str, sequence: int, at: datetime | str, **properties: Any) -> dict[str, Any]:
    return {
        "PartitionKey": call_sid,
        "RowKey": f"{sequence:06d}",
        "timestamp": at,
        **properties,
    }


def write_cases(storage: AzureStorage) -> GeneratedCounts:
    """Every untidy case of the contract, under the keys named in this module."""
    _ensure_containers(storage)
    written = GeneratedCounts()
    rng = random.Random(0)

    # behavioral-configs: 15 tactics; archetype present or derived; a BOM; one broken file.
    for index, name in enumerate(TACTICS):
        body = json.dumps(_tactic_config(name, rng, archetype=index % 2 == 0)).encode()
        if index % 3 == 1:
            body = BOM + body
        _upload(storage, sources.BEHAVIORAL_CONFIGS.name, f"{name}.json", body)
    _upload(storage, sources.BEHAVIORAL_CONFIGS.name, BROKEN_CONFIG, b'{"urgency_level": 4, "tac')
    written.add(sources.BEHAVIORAL_CONFIGS.name, len(TACTICS) + 1)

    # prompts: environment from metadata (missing means production); one that is not UTF-8.
    _upload(storage, sources.PROMPTS.name, "system_prompt.txt", SYSTEM_PROMPT.encode())
    _upload(
        storage,
        sources.PROMPTS.name,
        "premium_customer.txt",
        BOM + PREMIUM_PROMPT.encode(),
        {"environment": "staging"},
    )
    _upload(
        storage,
        sources.PROMPTS.name,
        "overdue_30_days.txt",
        OVERDUE_PROMPT.encode(),
        {"environment": "development"},
    )
    _upload(storage, sources.PROMPTS.name, BAD_PROMPT, "Créance réglée".encode("latin-1"))
    written.add(sources.PROMPTS.name, 4)

    customers: list[dict[str, Any]] = [
        {
            "PartitionKey": C_NEW, "RowKey": "profile", "phone_number": "+15551234567",
            "name": "Zoë Ångström-Nakamura 🙂", "account_last_4": "0042",
            "postal_code": "M5V 2T6", "balance": 1234.5, "days_overdue": 12,
            "segment": "premium", "language": "fr", "preferred_contact_time": "evenings",
            "risk_score": 7, "vip": True,
            "lifetime_value_cents": EntityProperty(12_345_678_901, EdmType.INT64),
        },
        {
            "PartitionKey": C_OLD, "RowKey": "profile", "phone_number": "(555) 123-4567",
            "name": "Jean-François Tremblay", "account_last_4": 42,
            "postal_code": "H2X 1Y4", "balance": "1234.50",
        },
        {
            "PartitionKey": C_DOTS, "RowKey": "profile", "phone_number": "555.987.6543",
            "name": "李小龍", "account_last_4": 7, "postal_code": "V6B 1A1",
            "balance": "0", "days_overdue": 0, "segment": "standard",
        },
        {
            "PartitionKey": C_BAD_PHONE, "RowKey": "profile", "phone_number": "call me maybe",
            "name": "Nobody", "account_last_4": "9999", "balance": 10.0,
        },
    ]  # fmt: skip
    written.add(
        sources.CUSTOMERS.name,
        _write_entities(storage.table(sources.CUSTOMERS.name), customers),
    )

    organizations: list[dict[str, Any]] = [
        {
            "PartitionKey": ORG_ACME, "RowKey": "org", "name": "Acme Collections",
            "domain": "acme.example",
            "settings": json.dumps({"timezone": "America/Toronto", "max_attempts": 3}),
            "members": json.dumps(
                [{"customer_id": C_NEW, "role": "admin"}, {"customer_id": C_OLD}]
            ),
        },
        {"PartitionKey": ORG_BARE, "RowKey": "org", "name": "Bare Org", "settings": ""},
        {
            "PartitionKey": ORG_GHOST, "RowKey": "org", "name": "Ghost Members Inc.",
            "members": json.dumps(
                [{"customer_id": C_DOTS, "role": "viewer"}, {"customer_id": "cust-999999"}]
            ),
        },
        {"PartitionKey": ORG_BROKEN, "RowKey": "org", "name": "Broken", "settings": "{not json"},
    ]  # fmt: skip
    written.add(
        sources.ORGANIZATIONS.name,
        _write_entities(storage.table(sources.ORGANIZATIONS.name), organizations),
    )

    t0 = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    history: list[dict[str, Any]] = [
        {
            "PartitionKey": C_NEW, "RowKey": CALL_FULL, "call_type": "simulator",
            "direction": "inbound", "status": "completed", "start_time": t0,
            "end_time": t0 + timedelta(seconds=125), "duration_seconds": 125,
            "conversation_id": "conv_01HQ7Z", "outcome": "payment_arranged",
            "behavioral_tactic": "aggressive_anchor", "organization_id": ORG_ACME,
            "agent_name": "Alex", "recording_note": "kept as metadata",
        },
        {
            "PartitionKey": C_OLD, "RowKey": CALL_OLD, "start_time": "2024-03-05T14:30:00",
            "end_time": "2024-03-05T14:35:30", "duration_seconds": "330",
        },
        {
            "PartitionKey": C_OLD, "RowKey": CALL_DERIVED, "direction": "inbound",
            "start_time": "2024-06-01T10:00:00-04:00",
            "end_time": datetime(2024, 6, 1, 14, 4, 5, tzinfo=UTC), "outcome": "callback_scheduled",
        },
        {
            "PartitionKey": C_DOTS, "RowKey": CALL_NO_ANSWER, "status": "no_answer",
            "start_time": datetime(2024, 7, 2, 9, 0, tzinfo=UTC),
            "end_time": datetime(2024, 7, 2, 9, 0, 40, tzinfo=UTC), "duration_seconds": 40,
        },
        {
            "PartitionKey": C_DOTS, "RowKey": CALL_FAILED, "status": "failed",
            "start_time": "2024-07-03T09:00:00.250000Z", "organization_id": ORG_ACME,
        },
        {
            "PartitionKey": C_NEW, "RowKey": CALL_IN_PROGRESS, "status": "in_progress",
            "call_type": "test", "start_time": datetime(2025, 1, 15, 8, 0, tzinfo=UTC),
        },
        {
            "PartitionKey": C_UNKNOWN, "RowKey": CALL_UNKNOWN_CUSTOMER,
            "start_time": datetime(2023, 12, 31, 23, 59, 30, tzinfo=UTC),
            "end_time": datetime(2024, 1, 1, 0, 1, 0, tzinfo=UTC),
            "behavioral_tactic": "retired_tactic", "organization_id": "org-gone",
        },
        {"PartitionKey": C_OLD, "RowKey": CALL_BAD_START, "start_time": "yesterday afternoon"},
        {
            "PartitionKey": C_NEW, "RowKey": CALL_WHOLE_SECONDS,
            "start_time": datetime(2024, 4, 10, 10, 0, 0, 600_000, tzinfo=UTC),
            "end_time": "2024-04-10T10:00:00", "status": "no_answer",
        },
        {
            "PartitionKey": C_OLD, "RowKey": CALL_ODD, "start_time": "2024-04-11T09:00:00",
            "end_time": "2024-04-11T08:50:00", "status": "busy", "direction": "Inbound",
            "call_type": "demo", "duration_seconds": "-1", "conversation_id": 987654,
            "outcome": "payment_arranged", "agent_name": "A" * 300,
        },
        {"PartitionKey": C_OLD, "RowKey": BAD_SID, "start_time": t0},
    ]  # fmt: skip
    written.add(
        sources.CALL_HISTORY.name,
        _write_entities(storage.table(sources.CALL_HISTORY.name), history),
    )

    s = timedelta(seconds=1)
    transcripts: list[dict[str, Any]] = [
        _entry(CALL_FULL, 1, t0 + 2 * s, entry_type="transcript", speaker="agent",
               text="Hello, this is Alex from TD Bank. Am I speaking with Zoë?"),
        _entry(CALL_FULL, 2, t0 + 6 * s, speaker="customer", text="Oui, c'est moi 🙂"),
        _entry(CALL_FULL, 4, t0 + 9 * s, entry_type="tool", tool_name="verify_account",
               tool_request=json.dumps({"account_last_4": "0042", "postal_code": "M5V 2T6"}),
               tool_response=json.dumps({"verified": True}), success="True", duration_ms=230),
        _entry(CALL_FULL, 5, t0 + 20 * s, entry_type="tool", tool_name="process_payment",
               tool_request='{"amount": 120.5, "card_token": "tok_4111111',
               tool_response=json.dumps({"status": "ok", "confirmation": "PMT-77"}),
               success=False, duration_ms=1200),
        _entry(CALL_FULL, 6, t0 + 1 * s, entry_type="event", event_type="call_connected",
               event_data=json.dumps({"sip_call_id": "abc@10.0.0.1"})),
        _entry(CALL_FULL, 7, t0 + 30 * s, entry_type="transcript", speaker="system", text=""),
        _entry(CALL_FULL, 8, "2024-03-05T14:31:00", speaker="customer", text=LONG_TEXT),
        _entry(CALL_FULL, 9, t0 + 100 * s, entry_type="event", event_type="error",
               event_data="Traceback (most recent call last): TimeoutError"),
        _entry(CALL_FULL, 10, t0 + 110 * s, entry_type="tool", tool_name="send_sms_link",
               tool_request="", success="False"),
        _entry(CALL_FULL, 11, t0 + 125 * s, entry_type="event", event_type="call_ended"),
        _entry(CALL_OLD, 1, "2024-03-05T14:30:05", speaker="agent", text="Good afternoon."),
        _entry(CALL_OLD, 2, "2024-03-05T14:30:09.5", speaker="customer", text="Hi."),
        _entry(CALL_OLD, 3, "2024-03-05 14:31:00+00:00", speaker="agent", text="Your balance?"),
        _entry(CALL_BAD_START, 1, datetime(2024, 8, 1, 12, 0, 1, tzinfo=UTC),
               speaker="agent", text="Hello?"),
        _entry(CALL_BAD_START, 2, datetime(2024, 8, 1, 12, 0, 9, tzinfo=UTC),
               speaker="customer", text="Who is this?"),
        _entry(CALL_ORPHAN, 3, datetime(2024, 9, 9, 9, 9, 9, tzinfo=UTC),
               entry_type="event", event_type="call_connected"),
        _entry(CALL_ORPHAN, 5, datetime(2024, 9, 9, 9, 9, 12, tzinfo=UTC),
               speaker="agent", text="Bonjour, ici Alex."),
        _entry(CALL_ORPHAN, 8, datetime(2024, 9, 9, 9, 10, 0, tzinfo=UTC),
               speaker="customer", text="Au revoir."),
        _entry(CALL_NO_ANSWER, 1, "not a time", speaker="agent", text="Hello?"),
        _entry(CALL_NO_ANSWER, 2, datetime(2024, 7, 2, 9, 0, 30, tzinfo=UTC),
               speaker="robot", text="beep"),
        _entry(BAD_SID, 1, t0, speaker="agent", text="orphaned by a bad SID"),
        _entry(CALL_ODD, 1, datetime(2024, 4, 11, 9, 0, 2, tzinfo=UTC), speaker="agent",
               text="Bonjour, ici Alex."),
        _entry(CALL_ODD, 2, datetime(2024, 4, 11, 9, 0, 5, tzinfo=UTC), speaker="customer",
               text="Je peux payer aujourd'hui."),
    ]  # fmt: skip
    written.add(
        sources.CALL_TRANSCRIPTS.name,
        _write_entities(storage.table(sources.CALL_TRANSCRIPTS.name), transcripts),
    )
    return written


def write_arrivals(storage: AzureStorage, *, seed: int = 1) -> GeneratedCounts:
    """The dual-write period: records written after a migration has started."""
    written = GeneratedCounts()
    now = BASE_TIME + timedelta(days=30)
    _upload(storage, sources.PROMPTS.name, "system_prompt.txt", SYSTEM_PROMPT_V2.encode())
    _upload(  # the same text again: a new Timestamp, nothing new to migrate
        storage,
        sources.PROMPTS.name,
        "premium_customer.txt",
        BOM + PREMIUM_PROMPT.encode(),
        {"environment": "staging"},
    )
    written.add(sources.PROMPTS.name, 2)
    customer: dict[str, Any] = {
        "PartitionKey": C_ARRIVING, "RowKey": "profile", "phone_number": "+14165550199",
        "name": "Late Arrival", "account_last_4": "1234", "balance": 50.25,
    }  # fmt: skip
    # A customer written only now, whose call was migrated long ago (without a link).
    late: dict[str, Any] = {
        "PartitionKey": C_UNKNOWN, "RowKey": "profile", "phone_number": "514-555-0142",
        "name": "Found At Last", "account_last_4": 314,
    }  # fmt: skip
    written.add(
        sources.CUSTOMERS.name,
        _write_entities(storage.table(sources.CUSTOMERS.name), [customer, late]),
    )
    history = [
        {"PartitionKey": C_OLD, "RowKey": CALL_ARRIVING, "start_time": now,
         "end_time": now + timedelta(seconds=61), "status": "completed"},
        {"PartitionKey": C_ARRIVING, "RowKey": CALL_ARRIVING_CUSTOMER, "start_time": now,
         "direction": "inbound", "status": "in_progress"},
    ]  # fmt: skip
    written.add(
        sources.CALL_HISTORY.name,
        _write_entities(storage.table(sources.CALL_HISTORY.name), history),
    )
    t0 = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    entries = [
        _entry(CALL_FULL, 12, t0 + timedelta(seconds=126), speaker="agent",
               text="One more thing: your receipt is on its way."),
        _entry(CALL_FULL, 14, t0 + timedelta(seconds=127), entry_type="tool",
               tool_name="send_receipt", tool_request="{}", success=True),
        _entry(CALL_ARRIVING, 1, now + timedelta(seconds=1), speaker="agent", text="Hi again."),
        _entry(CALL_ARRIVING, 2, now + timedelta(seconds=4), speaker="customer", text="Hello!"),
        _entry(CALL_ORPHAN, 9, datetime(2024, 9, 9, 9, 10, 30, tzinfo=UTC),
               entry_type="event", event_type="call_ended"),
    ]  # fmt: skip
    written.add(
        sources.CALL_TRANSCRIPTS.name,
        _write_entities(storage.table(sources.CALL_TRANSCRIPTS.name), entries),
    )
    return written


# -- bulk ------------------------------------------------------------------------------------

_LINES_AGENT = (
    "Hello, this is Alex from TD Bank calling about your account.",
    "Could you confirm the last four digits of your account?",
    "Thank you. I see a balance of {balance} dollars, {days} days overdue.",
    "Would a payment plan over three months help?",
    "Je comprends tout à fait, prenons le temps d'en parler.",
    "I've scheduled a callback for Thursday at 10.",
)
_LINES_CUSTOMER = (
    "Yes, speaking.",
    "It's {last4}.",
    "I already paid last week — can you check? 🙏",
    "Oui, un plan de paiement m'aiderait.",
    "That's not right… I was charged twice 😕",
    "Can I pay half now and half next month?",
)
_OUTCOMES = ("payment_arranged", "callback_scheduled", "transfer", "refused", None)


def _phone(rng: random.Random) -> str:
    area, middle, last = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    form = rng.random()
    if form < 0.6:
        return f"+1{area}{middle}{last:04d}"
    if form < 0.8:
        return f"({area}) {middle}-{last:04d}"
    return f"{area}.{middle}.{last:04d}"


def _customer(rng: random.Random, key: str) -> dict[str, Any]:
    last4 = rng.randint(0, 9999)
    old = key.startswith("cust-")
    entity: dict[str, Any] = {
        "PartitionKey": key,
        "RowKey": "profile",
        "phone_number": _phone(rng),
        "name": rng.choice(("Zoë", "Jean-François", "李", "Ana María", "Ørjan", "Sam"))
        + " "
        + rng.choice(("Tremblay", "Nakamura", "Smith", "Ångström", "O'Brien", "Nguyễn")),
        "account_last_4": last4 if old else f"{last4:04d}",
        "postal_code": rng.choice(("M5V 2T6", "H2X 1Y4", "V6B 1A1", "90210", "10001")),
        "balance": f"{rng.uniform(0, 9000):.2f}" if old else round(rng.uniform(0, 9000), 2),
    }
    if rng.random() < 0.7:
        entity["days_overdue"] = rng.randint(0, 120)
    if rng.random() < 0.6:
        entity["segment"] = rng.choice(("premium", "standard"))
    if rng.random() < 0.6:
        entity["language"] = rng.choice(("en", "fr"))
    if rng.random() < 0.2:
        entity["preferred_contact_time"] = rng.choice(("mornings", "evenings"))
    return entity


def _when(rng: random.Random, at: datetime) -> datetime | str:
    """A time as the DateTime newer rows hold, or as the ISO strings older rows hold."""
    form = rng.random()
    if form < 0.7:
        return at
    if form < 0.85:
        return at.replace(tzinfo=None).isoformat()
    return at.isoformat()


def bulk_entities(
    *, calls: int, seed: int, start: datetime = BASE_TIME, months: int = 18
) -> dict[str, list[dict[str, Any]]]:
    """The entities of ``write_bulk`` by table (pure; the same seed gives the same data)."""
    rng = random.Random(seed)
    n_customers = max(1, calls // 3)
    customer_keys = [
        str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if rng.random() < 0.5
        else f"cust-{seed:03d}{i:06d}"
        for i in range(n_customers)
    ]
    customers = [_customer(rng, key) for key in customer_keys]
    orgs = [
        {
            "PartitionKey": f"org-{seed}-{i}",
            "RowKey": "org",
            "name": f"Organization {i}",
            "settings": json.dumps({"region": rng.choice(("east", "west"))})
            if rng.random() < 0.7
            else "",
            "members": json.dumps(
                [
                    {"customer_id": rng.choice(customer_keys)}
                    | ({"role": "admin"} if rng.random() < 0.3 else {})
                    for _ in range(rng.randint(0, 4))
                ]
            ),
        }
        for i in range(max(1, calls // 50))
    ]
    history: list[dict[str, Any]] = []
    transcripts: list[dict[str, Any]] = []
    span = timedelta(days=30 * months)
    for n in range(calls):
        call_sid = "CA" + uuid.UUID(int=rng.getrandbits(128)).hex
        customer = rng.choice(customers)
        started = start - span + timedelta(seconds=rng.randint(0, int(span.total_seconds())))
        started = started.replace(microsecond=0)
        length = rng.randint(20, 900)
        status = rng.choices(
            ("completed", "failed", "no_answer", "in_progress", None), (60, 5, 10, 2, 23)
        )[0]
        entity: dict[str, Any] = {
            "PartitionKey": customer["PartitionKey"] if rng.random() > 0.02 else f"cust-gone-{n}",
            "RowKey": call_sid,
            "start_time": _when(rng, started),
            "agent_name": "Alex",
        }
        if status is not None:
            entity["status"] = status
        if status != "in_progress":
            entity["end_time"] = _when(rng, started + timedelta(seconds=length))
            if rng.random() < 0.6:
                entity["duration_seconds"] = length if rng.random() < 0.7 else str(length)
        for name, value in (
            ("call_type", rng.choice(("real_call", "simulator", "test"))),
            ("direction", rng.choice(("inbound", "outbound"))),
            ("outcome", rng.choice(_OUTCOMES)),
            ("behavioral_tactic", rng.choice(TACTICS)),
            ("conversation_id", f"conv_{rng.getrandbits(40):010x}"),
        ):
            if value is not None and rng.random() < 0.75:
                entity[name] = value
        if orgs and rng.random() < 0.3:
            entity["organization_id"] = rng.choice(orgs)["PartitionKey"]
        if rng.random() > 0.01:  # ~1% of calls lost their CallHistory write
            history.append(entity)
        sequence = 0
        at = started
        for _ in range(rng.randint(4, 24)):
            sequence += 1 if rng.random() < 0.9 else 2  # gaps
            at += timedelta(seconds=rng.randint(1, 20))
            kind = rng.choices(("transcript", None, "tool", "event"), (55, 25, 12, 8))[0]
            props: dict[str, Any] = {}
            if kind is not None:
                props["entry_type"] = kind
            if kind in ("transcript", None):
                speaker = "agent" if sequence % 2 else "customer"
                line = rng.choice(_LINES_AGENT if speaker == "agent" else _LINES_CUSTOMER)
                props["speaker"] = speaker
                props["text"] = line.format(
                    balance=customer["balance"],
                    days=customer.get("days_overdue", 0),
                    last4=customer["account_last_4"],
                )
            elif kind == "tool":
                request = json.dumps({"account": customer["PartitionKey"], "amount": 100})
                props["tool_name"] = rng.choice(("verify_account", "process_payment"))
                props["tool_request"] = request if rng.random() < 0.9 else request[:20]
                props["tool_response"] = json.dumps({"ok": True})
                props["success"] = rng.choice((True, False, "True", "False"))
                if rng.random() < 0.8:
                    props["duration_ms"] = rng.randint(50, 3000)
            else:
                props["event_type"] = rng.choice(("call_connected", "call_ended", "error"))
                if rng.random() < 0.5:
                    props["event_data"] = json.dumps({"detail": "ok"})
            transcripts.append(_entry(call_sid, sequence, _when(rng, at), **props))
        if n % 40 == 17 and "end_time" in entity:
            # A writer that kept whole seconds: a short call's end reads 0.4 s before its start
            # (no random draw here, so the rest of the data stays what the seed made it).
            entity["start_time"] = started.replace(microsecond=400_000)
            entity["end_time"] = started.replace(tzinfo=None).isoformat()
            entity.pop("duration_seconds", None)
    return {
        sources.CUSTOMERS.name: customers,
        sources.ORGANIZATIONS.name: orgs,
        sources.CALL_HISTORY.name: history,
        sources.CALL_TRANSCRIPTS.name: transcripts,
    }


def write_bulk(storage: AzureStorage, *, calls: int, seed: int = 1) -> GeneratedCounts:
    """``calls`` realistic calls with their customers, organizations and transcripts."""
    _ensure_containers(storage)
    written = GeneratedCounts()
    for table, entities in bulk_entities(calls=calls, seed=seed).items():
        written.add(table, _write_entities(storage.table(table), entities))
    return written


def bulk_calls_for(entities: int) -> int:
    """About how many bulk calls make ``entities`` entities (≈ 15.4 per call)."""
    return max(1, round(entities / 15.4))


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - a developer's tool
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="bulk calls (0: the cases only)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--arrivals", action="store_true", help="write dual-write arrivals only")
    args = parser.parse_args(argv)
    from worker.azure.client import storage_from_settings
    from worker.settings import settings_or_exit

    with storage_from_settings(settings_or_exit()) as storage:
        if args.arrivals:
            written = write_arrivals(storage, seed=args.seed)
        else:
            written = write_cases(storage)
            if args.calls:
                written.merge(write_bulk(storage, calls=args.calls, seed=args.seed))
    for source, count in sorted(written.counts.items()):
        print(f"{source:20} {count:8}")  # noqa: T201
    print(f"{'total':20} {written.total:8}")  # noqa: T201


if __name__ == "__main__":  # pragma: no cover
    main()
