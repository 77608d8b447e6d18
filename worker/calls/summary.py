"""The 21 summary metrics of ``calls``, defined once in Python and once in SQL.

The finalize path computes them in Python from the payload it is about to write (no extra
query on the hot path). The consistency check and the Azure migration recompute them in SQL
from the stored children. Both definitions live here, side by side, and a property test proves
they agree; ``docs/schema.md`` describes each metric.

Time metrics are recorded in seconds and summarised in milliseconds, rounded half away from
zero to two places, exactly as PostgreSQL's ``round(numeric, 2)`` does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from psycopg import sql

from models.enums import MessageRole, MetricType
from models.payload import CallPayload

_CENT = Decimal("0.01")
_THOUSAND = Decimal(1000)

#: (column, metric type) for averages of time metrics, in milliseconds.
AVERAGE_MS: tuple[tuple[str, MetricType], ...] = (
    ("avg_llm_ttfb_ms", MetricType.LLM_TTFB),
    ("avg_llm_processing_time_ms", MetricType.LLM_PROCESSING_TIME),
    ("avg_stt_delay_ms", MetricType.STT_DELAY),
    ("avg_user_to_bot_latency_ms", MetricType.USER_TO_BOT_LATENCY),
    ("avg_transcript_llm_gap_ms", MetricType.TRANSCRIPT_LLM_GAP),
    ("avg_llm_to_tts_gap_ms", MetricType.LLM_TO_TTS_GAP),
    ("avg_total_pipeline_time_ms", MetricType.TOTAL_PIPELINE_TIME),
    ("avg_rag_processing_time_ms", MetricType.RAG_PROCESSING_TIME),
    ("avg_variable_extraction_time_ms", MetricType.VARIABLE_EXTRACTION_TIME),
)
#: (column, metric type) for maxima of time metrics, in milliseconds.
MAXIMUM_MS: tuple[tuple[str, MetricType], ...] = (
    ("max_llm_ttfb_ms", MetricType.LLM_TTFB),
    ("max_user_to_bot_latency_ms", MetricType.USER_TO_BOT_LATENCY),
)
#: (column, metric types) for totals of count metrics.
TOTALS: tuple[tuple[str, tuple[MetricType, ...]], ...] = (
    ("total_llm_tokens", (MetricType.LLM_PROMPT_TOKENS, MetricType.LLM_COMPLETION_TOKENS)),
    ("total_prompt_tokens", (MetricType.LLM_PROMPT_TOKENS,)),
    ("total_completion_tokens", (MetricType.LLM_COMPLETION_TOKENS,)),
    ("total_tts_characters", (MetricType.TTS_CHARACTERS,)),
)
#: Counts of child rows.
COUNTS: tuple[str, ...] = (
    "total_turns",
    "total_messages",
    "total_transitions",
    "total_rag_retrievals",
    "total_interruptions",
    "total_tool_executions",
)

SUMMARY_COLUMNS: tuple[str, ...] = (
    *COUNTS,
    *(column for column, _ in AVERAGE_MS),
    *(column for column, _ in MAXIMUM_MS),
    *(column for column, _ in TOTALS),
)
assert len(SUMMARY_COLUMNS) == 21


def _ms(value: Decimal) -> Decimal:
    return (value * _THOUSAND).quantize(_CENT, rounding=ROUND_HALF_UP)


def _whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def total_turns(turn_numbers: Iterable[int | None], roles: Iterable[str]) -> int:
    """Distinct turn numbers of the messages; when none carries one, the number of user messages."""
    numbered = {t for t in turn_numbers if t is not None}
    if numbered:
        return len(numbered)
    return sum(1 for role in roles if role == MessageRole.USER)


_STORED = Decimal("0.0001")


def stored_values(payload: CallPayload) -> list[Decimal]:
    """The metric values as ``numeric(15,4)`` stores them: the runtime's decimal text rounded
    half away from zero, as PostgreSQL rounds on insert. Rows and summary both use these."""
    quantize = Decimal.quantize
    return [
        quantize(Decimal(repr(m.value)), _STORED, rounding=ROUND_HALF_UP) for m in payload.metrics
    ]


def compute_summary(
    payload: CallPayload, values: Sequence[Decimal] | None = None
) -> dict[str, Any]:
    """The 21 summary metrics of ``payload``, keyed by ``calls`` column; ``values`` are its
    metric values as stored (``stored_values``), computed here when not given."""
    if values is None:
        values = stored_values(payload)
    by_type: dict[str, list[Decimal]] = defaultdict(list)
    for metric, value in zip(payload.metrics, values, strict=True):
        by_type[metric.metric_type].append(value)

    summary: dict[str, Any] = {
        "total_turns": total_turns(
            (m.turn_number for m in payload.messages), (m.role for m in payload.messages)
        ),
        "total_messages": len(payload.messages),
        "total_transitions": len(payload.transitions),
        "total_rag_retrievals": len(payload.rag_retrievals),
        "total_interruptions": len(payload.interruptions),
        "total_tool_executions": len(payload.tool_executions),
    }
    for column, metric_type in AVERAGE_MS:
        found = by_type.get(metric_type)
        summary[column] = _ms(sum(found, Decimal(0)) / len(found)) if found else None
    for column, metric_type in MAXIMUM_MS:
        found = by_type.get(metric_type)
        summary[column] = _ms(max(found)) if found else None
    for column, metric_types in TOTALS:
        summary[column] = _whole(
            sum((v for t in metric_types for v in by_type.get(t, ())), Decimal(0))
        )
    return summary


def _in(types: Iterable[MetricType]) -> sql.Composable:
    return sql.SQL("metric_type IN ({})").format(
        sql.SQL(", ").join(sql.Literal(t.value) for t in types)
    )


def _columns(prefix: str, columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(prefix, column) for column in columns)


def _recompute_select() -> str:
    """The statement as text, every identifier quoted by ``psycopg.sql`` (rendered once, at
    import, so callers can use it as a plain string)."""
    average = sql.SQL("round(avg(value) FILTER (WHERE {}) * 1000, 2) AS {}")
    maximum = sql.SQL("round(max(value) FILTER (WHERE {}) * 1000, 2) AS {}")
    total = sql.SQL("coalesce(round(sum(value) FILTER (WHERE {})), 0)::bigint AS {}")
    metric_aggregates = [
        *(average.format(_in([t]), sql.Identifier(column)) for column, t in AVERAGE_MS),
        *(maximum.format(_in([t]), sql.Identifier(column)) for column, t in MAXIMUM_MS),
        *(total.format(_in(types), sql.Identifier(column)) for column, types in TOTALS),
    ]
    statement = sql.SQL("""
SELECT c.call_id,
       msg.total_turns, msg.total_messages, tr.total_transitions, rag.total_rag_retrievals,
       intr.total_interruptions, tool.total_tool_executions,
       {metric_columns},
       {total_columns}
  FROM calls c
  CROSS JOIN LATERAL (
       SELECT CASE WHEN count(turn_number) > 0 THEN count(DISTINCT turn_number)
                   ELSE count(*) FILTER (WHERE role = 'user') END::int AS total_turns,
              count(*)::int AS total_messages
         FROM call_messages WHERE call_id = c.call_id) msg
  CROSS JOIN LATERAL (
       SELECT count(*)::int AS total_transitions
         FROM call_transitions WHERE call_id = c.call_id) tr
  CROSS JOIN LATERAL (
       SELECT count(*)::int AS total_rag_retrievals
         FROM call_rag_retrievals WHERE call_id = c.call_id) rag
  CROSS JOIN LATERAL (
       SELECT count(*)::int AS total_interruptions
         FROM call_user_interruptions WHERE call_id = c.call_id) intr
  CROSS JOIN LATERAL (
       SELECT count(*)::int AS total_tool_executions
         FROM call_tool_executions WHERE call_id = c.call_id) tool
  CROSS JOIN LATERAL (
       SELECT {metric_aggregates}
         FROM call_metrics WHERE call_id = c.call_id) m
 WHERE c.call_id = ANY(%(call_ids)s)
""").format(
        metric_columns=_columns("m", (column for column, _ in (*AVERAGE_MS, *MAXIMUM_MS))),
        total_columns=_columns("m", (column for column, _ in TOTALS)),
        metric_aggregates=sql.SQL(", ").join(metric_aggregates),
    )
    return statement.as_string()


def _update_summary() -> str:
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Identifier("s", column))
        for column in SUMMARY_COLUMNS
    )
    statement = sql.SQL("""
UPDATE calls SET {assignments}
  FROM ({recompute}) s
 WHERE calls.call_id = s.call_id
""").format(assignments=assignments, recompute=sql.SQL(RECOMPUTE_SQL))
    return statement.as_string()


#: Recomputes the summary of the calls in ``%(call_ids)s`` (a uuid[]) from their stored
#: children; columns are ``call_id`` followed by ``SUMMARY_COLUMNS`` in order.
RECOMPUTE_SQL = _recompute_select()

#: Rewrites the stored summary of the calls in ``%(call_ids)s`` from their children.
UPDATE_SQL = _update_summary()
