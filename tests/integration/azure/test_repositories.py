"""The voice agent's reads (``worker.repositories``) on data migrated from Azure, each served by
an index.

The cases of ``worker.dev.legacy_data`` are migrated by the real migration from Azurite; the
answers are checked against them. For the plans, the tables then get filler rows of a production
size (customers, calls, tactics and prompts that match none of the reads), so that the planner
chooses as it would in production: on a table of a few pages a sequential scan is the cheaper
plan, and proves nothing either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import Session

from tests.conftest import Database
from tests.plans import Scan, plan_of
from worker import repositories as repo
from worker.dev import legacy_data as g

FILLER = """
INSERT INTO customers (external_id, phone_number, name)
SELECT 'filler-' || n, '+1999' || lpad(n::text, 7, '0'), 'Filler ' || n
  FROM generate_series(1, 20000) n;
INSERT INTO calls (call_id, source, revision, twilio_call_sid, status, started_at, customer_id)
SELECT gen_random_uuid(), 'azure', 1, 'CA' || md5(n::text),
       (ARRAY['ended', 'ended', 'error', 'in_progress'])[1 + n % 4],
       timestamptz '2024-01-01' + n * interval '7 minutes',
       (SELECT id FROM customers WHERE external_id = 'filler-' || (1 + n % 20000))
  FROM generate_series(1, 60000) n;
INSERT INTO behavioral_tactics (name, archetype, config)
SELECT 'filler_' || n, 'Filler',
       CASE WHEN n % 10 = 0 THEN '{"urgency_level": "high"}'::jsonb
            ELSE jsonb_build_object('urgency_level', 1 + n % 3, 'opening_strategy', 'filler')
       END
  FROM generate_series(1, 5000) n;
INSERT INTO system_prompts (name, environment, prompt_template)
SELECT 'filler_prompt_' || n, 'production', 'Filler prompt ' || n
  FROM generate_series(1, 5000) n;
ANALYZE customers, calls, behavioral_tactics, system_prompts;
"""


@pytest.fixture(scope="module")
def engine(cases_migrated: Database) -> Iterator[Engine]:
    built = create_engine(cases_migrated.sqlalchemy_url)
    yield built
    built.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as opened:
        yield opened


@pytest.fixture(scope="module")
def production_sized(cases_migrated: Database, engine: Engine) -> Engine:
    """The migrated cases among filler rows of a production size."""
    with cases_migrated.connect(autocommit=True) as conn:
        conn.execute(FILLER)
    return engine


def _urgencies(session: Session) -> dict[str, Any]:
    rows = session.connection().exec_driver_sql(
        "SELECT name, config -> 'urgency_level' FROM behavioral_tactics"
        " WHERE left(name, 7) <> 'filler_'"
    )
    return dict(rows.all())


# -- answers, on the migrated cases ------------------------------------------------------------


def test_customers_by_phone_in_any_form(session: Session) -> None:
    # Two legacy customers share this number: "+15551234567" and "(555) 123-4567".
    for form in ("+15551234567", "(555) 123-4567", "555.123.4567", "1 555 123 4567"):
        found = repo.customers_by_phone(session, form)
        assert {c.external_id for c in found} == {g.C_NEW, g.C_OLD}, form
    (dots,) = repo.customers_by_phone(session, "555-987-6543")
    assert (dots.external_id, dots.name, dots.account_last_4) == (g.C_DOTS, "李小龍", "0007")
    assert repo.customers_by_phone(session, "call me maybe") == []  # a reject, and no number
    assert repo.customers_by_phone(session, "+15550000000") == []


def test_customer_by_external_id(session: Session) -> None:
    customer = repo.customer_by_external_id(session, g.C_NEW)
    assert customer is not None
    assert (customer.segment, customer.language, customer.balance) == (
        "premium",
        "fr",
        Decimal("1234.50"),
    )
    assert customer.extra["preferred_contact_time"] == "evenings"
    assert repo.customer_by_external_id(session, g.C_BAD_PHONE) is None  # rejected


def test_tactics_by_name_and_by_setting(session: Session) -> None:
    tactic = repo.tactic_by_name(session, "aggressive_anchor")
    assert tactic is not None
    assert (tactic.archetype, tactic.config["tactics"][0]["name"]) == (
        "Aggressive Anchor",
        "High Anchor",
    )
    assert repo.tactic_by_name(session, "retired_tactic") is None

    urgencies = _urgencies(session)
    most = [t.name for t in repo.tactics_with_settings(session, {"urgency_level": 5})]
    assert most == sorted(name for name, level in urgencies.items() if level == 5)
    assert most  # the cases hold some
    anchored = repo.tactics_with_settings(session, {"tactics": [{"name": "High Anchor"}]})
    assert {t.name for t in anchored} == set(g.TACTICS)


def test_tactics_by_min_urgency(session: Session) -> None:
    urgencies = _urgencies(session)
    found = repo.tactics_by_min_urgency(session, 4)
    expected = sorted(
        (name for name, level in urgencies.items() if level >= 4),
        key=lambda name: (-urgencies[name], name),
    )
    assert [t.name for t in found] == expected
    assert 0 < len(found) < len(g.TACTICS)


def test_the_active_prompt_by_name_and_environment(session: Session) -> None:
    prompt = repo.active_prompt(session, "system_prompt")
    assert prompt is not None
    assert (prompt.prompt_template, prompt.version, prompt.environment) == (
        g.SYSTEM_PROMPT,
        1,
        "production",
    )
    assert prompt.content_sha256 == hashlib.sha256(g.SYSTEM_PROMPT.encode()).hexdigest()
    premium = repo.active_prompt(session, "premium_customer", "staging")
    assert premium is not None and premium.prompt_template == g.PREMIUM_PROMPT
    assert repo.active_prompt(session, "premium_customer") is None  # not for production


def test_a_customers_calls_most_recent_first(session: Session) -> None:
    customer = repo.customer_by_external_id(session, g.C_NEW)
    assert customer is not None
    calls = repo.customer_calls(session, customer.id)
    assert [c.twilio_call_sid for c in calls] == [
        g.CALL_IN_PROGRESS,  # 2025-01-15
        g.CALL_WHOLE_SECONDS,  # 2024-04-10
        g.CALL_FULL,  # 2024-03-05
    ]
    assert calls[2].outcome == "payment_arranged"
    running = repo.customer_calls(session, customer.id, statuses=["in_progress"])
    assert [c.twilio_call_sid for c in running] == [g.CALL_IN_PROGRESS]
    assert len(repo.customer_calls(session, customer.id, limit=1)) == 1


# -- plans, among production-sized tables ------------------------------------------------------


def _served(scans: list[Scan], table: str, indexes: set[str]) -> None:
    """The read scans ``table`` only through ``indexes`` (a bitmap index scan names the index,
    its heap scan the table)."""
    on_table = [s for s in scans if s.relation == table]
    assert on_table, scans
    assert all(s.node != "Seq Scan" for s in on_table), scans
    used = {s.index for s in scans if s.index is not None}
    assert used and used <= indexes, scans


def test_each_read_is_served_by_an_index(production_sized: Engine) -> None:
    engine = production_sized
    with Session(engine) as session:
        conn = session.connection()
        customer = repo.customer_by_external_id(session, g.C_NEW)
        assert customer is not None
        cases: list[tuple[Any, str, set[str]]] = [
            (
                lambda: repo.customers_by_phone(session, "(555) 123-4567"),
                "customers",
                {"ix_customers_phone_number"},
            ),
            (
                lambda: repo.customer_by_external_id(session, g.C_OLD),
                "customers",
                {"uq_customers_external_id"},
            ),
            (
                lambda: repo.tactic_by_name(session, "stern"),
                "behavioral_tactics",
                {"uq_behavioral_tactics_name"},
            ),
            (
                lambda: repo.tactics_with_settings(session, {"urgency_level": 5}),
                "behavioral_tactics",
                {"ix_behavioral_tactics_config"},
            ),
            (
                lambda: repo.tactics_by_min_urgency(session, 4),
                "behavioral_tactics",
                {"ix_behavioral_tactics_urgency"},
            ),
            (
                lambda: repo.active_prompt(session, "system_prompt"),
                "system_prompts",
                {"ix_system_prompts_active"},
            ),
            (
                lambda: repo.customer_calls(session, customer.id),
                "calls",
                {"ix_calls_customer_id_status"},
            ),
            (
                lambda: repo.customer_calls(session, customer.id, statuses=["ended", "error"]),
                "calls",
                {"ix_calls_customer_id_status"},
            ),
        ]
        for read, table, indexes in cases:
            _served(plan_of(engine, conn, read), table, indexes)
