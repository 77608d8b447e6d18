"""Customers and organizations (seed 000), filled by the Azure migration.

``external_id`` keeps the Azure key the row came from, so re-running the migration updates the
same row instead of creating a second one.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Column, Index, Numeric, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel

from models.base import Timestamped, in_check


class Customer(Timestamped, table=True):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(in_check("segment", ("premium", "standard")), name="segment"),
        CheckConstraint(in_check("language", ("en", "fr")), name="language"),
        CheckConstraint("days_overdue >= 0", name="days_overdue_not_negative"),
        Index("ix_customers_phone_number", "phone_number"),
    )

    id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    external_id: str | None = Field(default=None, max_length=255, unique=True)
    phone_number: str | None = Field(default=None, max_length=20)
    name: str | None = Field(default=None, max_length=255)
    account_last_4: str | None = Field(default=None, max_length=4)
    postal_code: str | None = Field(default=None, max_length=16)
    balance: Decimal | None = Field(default=None, sa_type=Numeric(12, 2))
    days_overdue: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    segment: str = Field(
        default="standard", max_length=16, sa_column_kwargs={"server_default": "standard"}
    )
    language: str = Field(default="en", max_length=5, sa_column_kwargs={"server_default": "en"})
    extra: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )


class Organization(Timestamped, table=True):
    __tablename__ = "organizations"

    id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    external_id: str | None = Field(default=None, max_length=255, unique=True)
    name: str = Field(max_length=255)
    domain: str | None = Field(default=None, max_length=255)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("settings", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    )


class OrganizationMember(SQLModel, table=True):
    __tablename__ = "organization_members"
    __table_args__ = (Index("ix_organization_members_customer_id", "customer_id"),)

    organization_id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        foreign_key="organizations.id",
        ondelete="CASCADE",
    )
    customer_id: uuid.UUID = Field(
        sa_type=PG_UUID(as_uuid=True),
        primary_key=True,
        foreign_key="customers.id",
        ondelete="CASCADE",
    )
    role: str = Field(
        default="member", max_length=50, sa_column_kwargs={"server_default": "member"}
    )
