"""The child-table declarations against the SQLModel tables, and ``build_rows`` against them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Column
from sqlalchemy.dialects import postgresql

from models.payload import CallPayload
from models.tables import metadata
from tests import factories
from worker.calls.child_tables import CALL_TABLES, CHILD_TABLES, ROW_TABLES, ChildTable
from worker.calls.persist import build_rows

#: The type names binary COPY is given, by the type PostgreSQL's dialect compiles a column to.
PG_NAMES = {
    "UUID": "uuid",
    "INTEGER": "int4",
    "BIGINT": "int8",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "VARCHAR": "varchar",
    "TEXT": "text",
    "BOOLEAN": "bool",
    "NUMERIC": "numeric",
    "JSONB": "jsonb",
    "TEXT[]": "text[]",
    "VECTOR": "vector",
}

DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

#: Columns of a child table that no writer fills, and why it may leave them out.
NOT_WRITTEN = {
    "id": "PostgreSQL makes it (uuidv7() default, in insert order; call_analysis: its call_id)",
    "created_at": "set by PostgreSQL when the row is inserted",
    "updated_at": "kept current by the set_updated_at trigger",
    "request_text": "only a migrated call has it: a legacy request that is not JSON",
    "response_text": "only a migrated call has it: a legacy response that is not JSON",
    "event_data_text": "only a migrated call has it: legacy event data that is not JSON",
}


def pg_name(column: Column[object]) -> str:
    compiled = column.type.compile(dialect=DIALECT)
    base = re.sub(r"\(.*?\)", "", compiled).strip()
    assert base in PG_NAMES, f"{column.table.name}.{column.name}: no PG name for {compiled}"
    return PG_NAMES[base]


@pytest.mark.parametrize("table", CHILD_TABLES, ids=lambda t: t.name)
def test_every_declared_column_exists_with_its_type(table: ChildTable) -> None:
    model = metadata.tables[table.name]
    for column in table.columns:
        assert column.name in model.columns, f"{table.name}.{column.name} is not in the model"
        assert column.pg_type == pg_name(model.columns[column.name]), (
            f"{table.name}.{column.name}: declared {column.pg_type},"
            f" the model has {pg_name(model.columns[column.name])}"
        )
    assert len(set(table.column_names)) == len(table.columns), f"{table.name}: a column twice"


@pytest.mark.parametrize("table", CHILD_TABLES, ids=lambda t: t.name)
def test_every_column_the_writer_must_fill_is_declared(table: ChildTable) -> None:
    model = metadata.tables[table.name]
    left_out = [c for c in model.columns if c.name not in table.column_names]
    for column in left_out:
        assert column.name in NOT_WRITTEN, f"{table.name}.{column.name} is written by no one"
        may_be_left_out = (
            column.nullable or column.server_default is not None or column.computed is not None
        )
        assert may_be_left_out, f"{table.name}.{column.name} needs a value"


def test_the_declarations_name_every_table_that_holds_a_call() -> None:
    """A table added with a ``call_id`` is declared, or named here as no row of a call."""
    not_children = {
        "calls": "the call itself",
        "call_announcements": "a call's start, settled (deleted) by its finalize",
        "failed_payloads": "a dead-lettered payload, kept whether or not its call is stored",
        "call_conflicts": "two deliveries of one revision with other content, kept for an operator",
    }
    holding = {
        name
        for name, table in metadata.tables.items()
        if "call_id" in table.columns and name not in not_children
    }
    assert holding == set(CALL_TABLES) - {"calls"}


def test_build_rows_makes_every_row_table_in_the_declared_shape() -> None:
    rows = build_rows(CallPayload.model_validate(factories.payload(seed=5)))
    assert tuple(rows.children) == tuple(t.name for t in ROW_TABLES)
    for table in ROW_TABLES:
        assert rows.children[table.name], f"the payload has no {table.name}"
        assert {len(row) for row in rows.children[table.name]} == {len(table.columns)}
