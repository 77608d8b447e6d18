"""Realistic simulated calls, driven through ``CallRecorder`` exactly as the runtime drives it.

Used by ``callstore demo``, the benchmarks, the soak and the tests. A call has 30–200
messages in Unicode, every one of the 12 metric types, RAG retrievals with chunks, variable
extractions, tool executions, interruptions, lifecycle events and an analysis. Time is
simulated: the recorder's clock advances as the conversation does, so a call lasts minutes of
"call time" while being generated in microseconds. The same seed gives the same call.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from models.enums import MetricType
from worker.client.recorder import CallRecorder

TENANTS = tuple(uuid.UUID(int=0x7E4A47 << 96 | n) for n in range(1, 4))
AGENTS = tuple(uuid.UUID(int=0xA6E47 << 96 | n) for n in range(1, 6))
NODES = (
    ("greeting", "Greeting"),
    ("verify_identity", "Verify identity"),
    ("main_menu", "Main menu"),
    ("info_lookup", "Information lookup"),
    ("payment_plan", "Payment plan"),
    ("goodbye", "Goodbye"),
)
USER_LINES = (
    "Hi, I'm calling about my account balance.",
    "Bonjour, je voudrais parler de ma facture, s'il vous plaît.",
    "Can you explain what GLP-1 medication does?",
    "私の支払い期限はいつですか？",
    "I already paid last week — can you check? 🙏",
    "¿Puedo pagar en dos cuotas?",
    "My name is Zoë Ångström, date of birth 12/03/1985.",
    "Ich möchte meine Adresse ändern.",
    "That's not right… I was charged twice 😕",
    "مرحبا، أريد التحدث عن حسابي",
    "Yes, the last four digits are 0042.",
    "Could you send me a text with the link?",
)
ASSISTANT_LINES = (
    "Thanks for calling! I can help with that. Could you confirm your date of birth?",
    "Merci ! Je vérifie votre dossier tout de suite.",
    (
        "GLP-1 is a hormone that helps regulate blood sugar; medications that mimic it are used "
        "for type 2 diabetes."
    ),
    "お支払い期限は今月の25日です。",
    "I see a payment of $120.50 on the 14th — it's posted to your account.",
    "Claro, podemos dividir el pago en dos cuotas de 60 dólares.",
    "Thank you, Zoë. Your identity is verified.",
    "Natürlich, ich aktualisiere Ihre Adresse.",
    "I'm sorry about that — I've opened a dispute for the duplicate charge.",
    "شكرا لك، سأتحقق من حسابك الآن",
    "I've sent the secure payment link by SMS. Is there anything else?",
    "Have a great day! Goodbye 👋",
)
CHUNK_TEXTS = (
    (
        "GLP-1 (glucagon-like peptide-1) is an incretin hormone released after meals. It "
        "stimulates insulin secretion and slows gastric emptying."
    ),
    (
        "Payment plans may be offered to customers up to 90 days overdue. Each installment must be "
        "at least 25% of the outstanding balance."
    ),
    (
        "Disputes for duplicate charges are resolved within 10 business days; the customer receives "
        "a provisional credit within 2 days."
    ),
    (
        "Les clients peuvent modifier leur adresse postale par téléphone après vérification "
        "d'identité."
    ),
    (
        "Identity verification requires two of: date of birth, postal code, last four digits of the "
        "account number."
    ),
)


class SimulatedClock:
    """A clock that moves only when the simulated conversation does."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, rng: random.Random, low: float, high: float) -> None:
        self.current += timedelta(seconds=rng.uniform(low, high))


@dataclass(frozen=True, slots=True)
class CallShape:
    """How big simulated calls are."""

    min_messages: int = 30
    max_messages: int = 200


def simulate_call(
    rng: random.Random,
    *,
    start: datetime,
    shape: CallShape | None = None,
    **recorder_options: Any,
) -> CallRecorder:
    """Record one realistic call into a new ``CallRecorder`` (not yet finalized)."""
    clock = SimulatedClock(start)
    recorder = CallRecorder(
        call_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        tenant_id=rng.choice(TENANTS),
        agent_id=rng.choice(AGENTS),
        agent_version=f"1.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
        agent_name=rng.choice(("Alex", "Camille", "Sam", "Noor")),
        from_number=f"+1555{rng.randint(0, 9_999_999):07d}",
        to_number=f"+1800{rng.randint(0, 9_999_999):07d}",
        twilio_call_sid="CA" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
        twilio_stream_sid="MZ" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
        recording_enabled=rng.random() < 0.7,
        direction=rng.choice(("inbound", "outbound")),
        clock=clock,
        **recorder_options,
    )
    node_index = 0
    node = NODES[node_index][0]
    recorder.initial_node = node
    recorder.record_event("call_connected", {"codec": "PCMU", "region": "us-east"})

    shape = shape or CallShape()
    turns = rng.randint(shape.min_messages, shape.max_messages) // 2
    rag_turn = rng.randint(1, turns)
    extraction_turn = rng.randint(1, turns)
    for turn in range(1, turns + 1):
        clock.advance(rng, 1.0, 6.0)
        recorder.record_message("user", rng.choice(USER_LINES), node_id=node, turn_number=turn)
        _turn_metrics(recorder, rng, turn, node)
        if turn == rag_turn or rng.random() < 0.15:
            _rag(recorder, rng, turn, node)
        if turn == extraction_turn or rng.random() < 0.1:
            _extraction(recorder, rng, turn, node)
        if rng.random() < 0.1:
            recorder.record_tool_execution(
                rng.choice(("lookup_account", "process_payment", "send_sms")),
                request={"account": f"acct-{rng.randint(1000, 9999)}", "amount": 60.0},
                response={"status": "ok", "reference": uuid.UUID(int=rng.getrandbits(128))},
                success=rng.random() > 0.05,
                duration_ms=rng.randint(40, 900),
                node_id=node,
                turn_number=turn,
            )
        interrupted = rng.random() < 0.08
        clock.advance(rng, 0.4, 2.5)
        recorder.record_message(
            "assistant",
            rng.choice(ASSISTANT_LINES),
            node_id=node,
            turn_number=turn,
            was_interrupted=interrupted,
        )
        if interrupted:
            recorder.record_user_interruption(interrupted_at_turn=turn, node_id=node)
        if node_index < len(NODES) - 1 and rng.random() < 0.2:
            old_id, old_name = NODES[node_index]
            node_index += 1
            node, new_name = NODES[node_index]
            recorder.record_transition(
                from_node_id=old_id,
                to_node_id=node,
                reason="workflow_transition",
                condition=rng.choice((None, "intent_detected", "verified")),
                turn_number=turn,
                from_node_name=old_name,
                to_node_name=new_name,
            )
    recorder.final_node = node
    recorder.set_analysis(
        sentiment=rng.choice(("positive", "neutral", "negative", "mixed")),
        sentiment_score=round(rng.uniform(-1, 1), 4),
        call_successful=rng.random() < 0.8,
        summary="Customer asked about their balance and agreed to a two-part payment plan.",
        topics=["billing", "payment_plan"],
        keywords_detected=rng.sample(["balance", "payment", "dispute", "diabetes", "address"], 2),
        model="gpt-4o-mini",
        analysis_data={"talk_ratio": round(rng.uniform(0.3, 0.7), 2)},
    )
    clock.advance(rng, 0.5, 2.0)
    recorder.record_event("call_ended", {"hangup_by": rng.choice(("customer", "agent"))})
    return recorder


def _turn_metrics(recorder: CallRecorder, rng: random.Random, turn: int, node: str) -> None:
    for metric, low, high in (
        (MetricType.STT_DELAY, 0.08, 0.4),
        (MetricType.TRANSCRIPT_LLM_GAP, 0.01, 0.1),
        (MetricType.LLM_TTFB, 0.15, 0.9),
        (MetricType.LLM_PROCESSING_TIME, 0.3, 2.5),
        (MetricType.LLM_TO_TTS_GAP, 0.02, 0.2),
        (MetricType.USER_TO_BOT_LATENCY, 0.5, 2.0),
        (MetricType.TOTAL_PIPELINE_TIME, 0.8, 3.5),
    ):
        recorder.record_metric(
            metric, rng.uniform(low, high), processor="pipeline", turn_number=turn, node_id=node
        )
    recorder.record_metric(MetricType.LLM_PROMPT_TOKENS, rng.randint(400, 3000), "OpenAILLM", turn)
    recorder.record_metric(
        MetricType.LLM_COMPLETION_TOKENS, rng.randint(10, 200), "OpenAILLM", turn
    )
    recorder.record_metric(MetricType.TTS_CHARACTERS, rng.randint(20, 400), "CartesiaTTS", turn)


def _rag(recorder: CallRecorder, rng: random.Random, turn: int, node: str) -> None:
    took = rng.uniform(40, 400)
    count = rng.randint(3, 5)
    recorder.record_rag_retrieval(
        query=rng.choice(USER_LINES),
        query_params={"search_mode": rng.choice(("vector", "fts", "hybrid")), "top_k": count},
        chunks=[
            {
                "chunk_id": rng.randint(1, 50_000),
                "content": rng.choice(CHUNK_TEXTS),
                "document_id": rng.randint(1, 300),
                "filename": rng.choice(("medical_guide.pdf", "billing_policy.pdf", "faq_fr.md")),
                "s3_key": f"docs/{rng.randint(1, 300)}.pdf",
                "chunk_index": rng.randint(0, 80),
                "token_count": rng.randint(60, 300),
                "score": round(rng.uniform(0.5, 0.99), 4),
            }
            for _ in range(count)
        ],
        processing_time_ms=round(took, 2),
        node_id=node,
        turn_number=turn,
    )
    recorder.record_metric(MetricType.RAG_PROCESSING_TIME, took / 1000, "RAGProcessor", turn)


def _extraction(recorder: CallRecorder, rng: random.Random, turn: int, node: str) -> None:
    took = rng.uniform(200, 900)
    success = rng.random() < 0.85
    recorder.record_variable_extraction(
        variables_requested=["first_name", "last_name", "topic"],
        variables_extracted={"first_name": "Zoë", "last_name": "Ångström", "topic": "billing"}
        if success
        else {"first_name": "Zoë"},
        success=success,
        processing_time_ms=round(took, 2),
        node_id=node,
        turn_number=turn,
    )
    recorder.record_metric(
        MetricType.VARIABLE_EXTRACTION_TIME, took / 1000, "VariableExtractor", turn
    )
