"""The call site's promise: a payload built by ``CallRecorder`` from calls that did not raise is
never refused by the worker.

Random sequences of recording calls — any Unicode (NUL, lone surrogates), chunks with extra keys
or missing ones, JSON of any shape and depth, out-of-range numbers, unknown enum values — are
made as a runtime would; those the recorder refuses raise ``InvalidRecording``, and whatever it
accepted must pass the worker's contract after the trip through JSON and be stored by the
worker's finalize on the real PostgreSQL.
"""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from tests.strategies import RecordingCall, recording_calls, replay
from worker.calls.finalize import FinalizeOutcome, finalize_call
from worker.calls.validation import validate_payload
from worker.client.encoding import encode_json
from worker.client.recorder import CallRecorder
from worker.settings import Settings


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=recording_calls)
def test_what_the_recorder_accepted_the_worker_validates_and_stores(
    calls: list[RecordingCall], settings: Settings, engine: Engine
) -> None:
    recorder = CallRecorder(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), announce=False, journal=False, settings=settings
    )
    replay(recorder, calls)
    body = recorder.build_payload()
    received = json.loads(encode_json(body))  # what the broker hands the worker
    validate_payload(received, max_bytes=settings.max_payload_bytes)
    result = finalize_call(received, settings=settings, task_id="callsite", engine=engine)
    assert result.outcome is FinalizeOutcome.PERSISTED, result.error
