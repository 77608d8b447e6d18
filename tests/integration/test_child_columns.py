"""``build_rows`` against the declared column order, on a real PostgreSQL.

Binary COPY takes values by position: a tuple whose ``reason`` and ``condition`` are swapped is
stored without complaint, each in the other's column. So the call stored here carries in every
field of every entry a value of its own (``"reason:3"``, distinct numbers per field), and each
column read back by name must hold the field of that name.
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, JsonValue
from sqlalchemy import Engine

from models.payload import (
    Analysis,
    CallPayload,
    EventEntry,
    InterruptionEntry,
    MessageEntry,
    MetricEntry,
    RagChunk,
    RagRetrievalEntry,
    ToolExecutionEntry,
    TransitionEntry,
    VariableExtractionEntry,
)
from tests import factories
from worker.calls.child_tables import ROW_TABLES
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.calls.persist import RETRIEVAL_NAMESPACE
from worker.calls.summary import stored_values
from worker.settings import Settings

#: The payload list each table's rows come from, and the model of its entries.
SOURCES: dict[str, tuple[str, type[BaseModel]]] = {
    "call_messages": ("messages", MessageEntry),
    "call_transitions": ("transitions", TransitionEntry),
    "call_metrics": ("metrics", MetricEntry),
    "call_rag_retrievals": ("rag_retrievals", RagRetrievalEntry),
    "call_extracted_variables": ("variable_extractions", VariableExtractionEntry),
    "call_user_interruptions": ("interruptions", InterruptionEntry),
    "call_tool_executions": ("tool_executions", ToolExecutionEntry),
    "call_events": ("events", EventEntry),
}


def _kind(annotation: Any) -> str | None:
    """Which marker a field of this type can carry: text, int, a list of text, JSON."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if len(options) != 1:
            return None
        annotation = options[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if annotation is str:
        return "text"
    if annotation is int:
        return "int"
    if annotation == list[str]:
        return "texts"
    if annotation is JsonValue or get_origin(annotation) is dict:
        return "json"
    return None  # timestamps, enums, booleans, decimals, nested lists, embeddings


def _mark(entry: dict[str, Any], model: type[BaseModel], index: int) -> None:
    """Give every text, integer and JSON field of ``entry`` a value no other field has."""
    for position, (name, info) in enumerate(model.model_fields.items()):
        kind = _kind(info.annotation)
        if kind == "text":
            entry[name] = f"{name}:{index}"
        elif kind == "int":
            entry[name] = 1000 * (position + 1) + index
        elif kind == "texts":
            entry[name] = [f"{name}:{index}"]
        elif kind == "json":
            entry[name] = {name: index}


def marked_payload() -> dict[str, Any]:
    body = factories.payload(seed=11)
    for field, model in SOURCES.values():
        assert body[field], f"the payload has no {field}"
        for index, entry in enumerate(body[field]):
            _mark(entry, model, index)
    chunks = [chunk for r in body["rag_retrievals"] for chunk in r["chunks"]]
    assert chunks
    for index, chunk in enumerate(chunks):
        _mark(chunk, RagChunk, index)
    assert body["analysis"] is not None
    _mark(body["analysis"], Analysis, 0)
    return body


def _stored(
    conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], call_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The call's rows in ``table``, in the order they were written (``id`` is a uuidv7 made
    at insert, except for retrievals, whose ids are their positions' and are sorted here)."""
    order = "call_id" if table == "call_analysis" else "id"  # one row: analysis has no id
    query = sql.SQL("SELECT {}, {} FROM {} WHERE call_id = %s ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(order),
        sql.Identifier(table),
        sql.Identifier(order),
    )
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, (call_id,)).fetchall()


def _vector_length(value: str | None) -> int | None:
    return None if value is None else len(value.strip("[]").split(","))


def test_every_column_holds_the_field_of_its_name(
    settings: Settings, engine: Engine, conn: psycopg.Connection[Any]
) -> None:
    body = marked_payload()
    assert finalize_call(body, settings=settings, task_id="m", engine=engine).outcome is (
        FinalizeOutcome.PERSISTED
    )
    p = CallPayload.model_validate(body)
    cid = p.call_id
    retrieval_ids = [
        uuid.uuid5(RETRIEVAL_NAMESPACE, f"{cid}/{i}") for i in range(len(p.rag_retrievals))
    ]
    parents = [
        (rid, r) for rid, r in zip(retrieval_ids, p.rag_retrievals, strict=True) for _ in r.chunks
    ]
    values = stored_values(p)

    #: Columns that hold no field of their name, each with what it must hold instead.
    derived: dict[str, Callable[[int, Any], Any]] = {
        "call_id": lambda i, entry: cid,
        "call_rag_retrievals.id": lambda i, entry: retrieval_ids[i],
        "call_rag_retrievals.chunks_retrieved": lambda i, entry: len(entry.chunks),
        "call_metrics.value": lambda i, entry: values[i],
        "call_rag_chunks.retrieval_id": lambda i, entry: parents[i][0],
        "call_rag_chunks.retrieval_timestamp": lambda i, entry: parents[i][1].timestamp,
        # pgvector reads back float32 text: its length is what a swapped column would break.
        "call_rag_chunks.embedding": lambda i, entry: _vector_length(
            None if entry.embedding is None else ",".join(map(str, entry.embedding))
        ),
    }
    entries: dict[str, list[Any]] = {
        table: list(getattr(p, field)) for table, (field, _model) in SOURCES.items()
    }
    entries["call_rag_chunks"] = [chunk for r in p.rag_retrievals for chunk in r.chunks]
    entries["call_analysis"] = [p.analysis]

    for table in ROW_TABLES:
        rows = _stored(conn, table.name, table.column_names, cid)
        if table.name == "call_rag_retrievals":
            order = {rid: i for i, rid in enumerate(retrieval_ids)}
            rows.sort(key=lambda row: order[row["id"]])
        expected_entries = entries[table.name]
        assert len(rows) == len(expected_entries), table.name
        for i, (row, entry) in enumerate(zip(rows, expected_entries, strict=True)):
            for column in table.column_names:
                rule = derived.get(f"{table.name}.{column}") or derived.get(column)
                stored = row[column]
                if column == "embedding":
                    stored = _vector_length(stored)
                expected = rule(i, entry) if rule else getattr(entry, column)
                assert stored == expected, f"{table.name}[{i}].{column}: {stored!r} != {expected!r}"
