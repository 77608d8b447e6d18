"""What the voice agent reads once its data lives in PostgreSQL: seed 000's repositories, as
typed functions on a session.

Seed 000 wrote these reads as async repository classes (``CallRepository``,
``BehavioralRepository``) over its own tables; here they are plain functions over the call
store's tables, sync like the rest of callstore, each one statement that an index serves (the
tests show every plan). The caller owns the session and its transaction
(``worker.db.session_scope``); nothing here writes.

Where they differ from the seed (``docs/coming-from-seeds.md``): a phone number may belong to
several customers (the legacy data has such numbers), so ``customers_by_phone`` returns them
all; a prompt has versions, and the active one is read; call statuses are the call store's
(``in_progress``, ``ended``, ``error``), the legacy one is in ``metadata.legacy_status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, literal, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from models.accounts import Customer
from models.agent_config import URGENCY_LEVEL_SQL, BehavioralTactic, SystemPrompt
from models.calls import Call
from worker.phone_numbers import to_e164

#: At most this many calls of a customer are read at once (seed 000's default).
CUSTOMER_CALLS_LIMIT = 50

#: The expression ``ix_behavioral_tactics_urgency`` indexes (numeric, so that a numeric
#: bound value keeps the comparison on the indexed type).
_URGENCY_LEVEL = literal_column(URGENCY_LEVEL_SQL, Numeric())


def customers_by_phone(session: Session, phone_number: str) -> list[Customer]:
    """The customers with this phone number, however it is written (``(555) 123-4567`` finds
    ``+15551234567``), the most recently updated first; none when it is not a phone number."""
    normalized = to_e164(phone_number)
    if normalized is None:
        return []
    statement = (
        select(Customer)
        .where(col(Customer.phone_number) == normalized)
        .order_by(col(Customer.updated_at).desc(), col(Customer.id))
    )
    return list(session.exec(statement))


def customer_by_external_id(session: Session, external_id: str) -> Customer | None:
    """The customer the legacy system knew by ``external_id`` (its Azure PartitionKey)."""
    statement = select(Customer).where(col(Customer.external_id) == external_id)
    return session.exec(statement).one_or_none()


def tactic_by_name(session: Session, name: str) -> BehavioralTactic | None:
    """A behavioral tactic by name (``aggressive_anchor``), active or not."""
    statement = select(BehavioralTactic).where(col(BehavioralTactic.name) == name)
    return session.exec(statement).one_or_none()


def tactics_with_settings(
    session: Session, settings: Mapping[str, Any], *, active_only: bool = True
) -> list[BehavioralTactic]:
    """The tactics whose ``config`` contains ``settings`` (JSONB containment:
    ``{"urgency_level": 5}``, ``{"tactics": [{"name": "High Anchor"}]}``), by name."""
    statement = select(BehavioralTactic).where(
        col(BehavioralTactic.config).op("@>")(literal(dict(settings), JSONB))
    )
    if active_only:
        statement = statement.where(col(BehavioralTactic.is_active))
    return list(session.exec(statement.order_by(col(BehavioralTactic.name))))


def tactics_by_min_urgency(
    session: Session, minimum: int | Decimal, *, active_only: bool = True
) -> list[BehavioralTactic]:
    """The tactics whose ``urgency_level`` setting is at least ``minimum`` (seed 000's
    ``query_tactics_by_urgency``), most urgent first; a tactic whose urgency is missing or not
    a number is never among them."""
    statement = select(BehavioralTactic).where(_URGENCY_LEVEL >= Decimal(minimum))  # noqa: SIM300
    if active_only:
        statement = statement.where(col(BehavioralTactic.is_active))
    statement = statement.order_by(_URGENCY_LEVEL.desc(), col(BehavioralTactic.name))
    return list(session.exec(statement))


def active_prompt(
    session: Session, name: str, environment: str = "production"
) -> SystemPrompt | None:
    """The active version of the prompt ``name`` (``system_prompt`` is the default one), when
    it is meant for ``environment``."""
    statement = select(SystemPrompt).where(
        col(SystemPrompt.name) == name,
        col(SystemPrompt.is_active),
        col(SystemPrompt.environment) == environment,
    )
    return session.exec(statement).one_or_none()


def customer_calls(
    session: Session,
    customer_id: uuid.UUID,
    *,
    statuses: Sequence[str] = (),
    limit: int = CUSTOMER_CALLS_LIMIT,
) -> list[Call]:
    """A customer's calls, the most recent first (migrated and live alike), optionally only
    those in ``statuses`` (the call store's: ``in_progress``, ``ended``, ``error``)."""
    statement = select(Call).where(col(Call.customer_id) == customer_id)
    if statuses:
        statement = statement.where(col(Call.status).in_(list(statuses)))
    statement = statement.order_by(col(Call.started_at).desc(), col(Call.call_id)).limit(limit)
    return list(session.exec(statement))


__all__ = [
    "CUSTOMER_CALLS_LIMIT",
    "active_prompt",
    "customer_by_external_id",
    "customer_calls",
    "customers_by_phone",
    "tactic_by_name",
    "tactics_by_min_urgency",
    "tactics_with_settings",
]
