"""What the worker's main process hands the pool for a ``calls.finalize`` message: the bytes
of its payload, never its decoded arguments beside its raw body."""

from __future__ import annotations

import pickle
import uuid
from typing import Any

from kombu.message import Message

from tasks.finalize_request import FinalizeRequest
from tests import factories
from worker.calls.raw_calls import RawCall
from worker.client.encoding import encode_json
from worker.dev.raw_messages import task_body
from worker.intake.gate import _keep_payload_undecoded

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def _message(body: bytes) -> Message:
    task_id = str(uuid.uuid4())
    headers = {"task": "calls.finalize", "id": task_id, "root_id": task_id, "retries": 0}
    return Message(  # type: ignore[no-untyped-call]
        body=body,
        content_type="application/json",
        content_encoding="utf-8",
        headers=headers,
        properties={"delivery_tag": "1"},
        delivery_info={"exchange": "", "routing_key": "calls"},
    )


def _request(celery_app: Any, message: Message) -> Any:
    app = celery_app.app
    return FinalizeRequest(message, app=app, task=app.tasks["calls.finalize"], hostname="h")


def test_the_pool_gets_the_payload_bytes_already_decoded_as_arguments(celery_app: Any) -> None:
    payload = factories.payload(5)
    body = encode_json([[payload], {}, EMBED])
    message = _message(body)
    assert _keep_payload_undecoded(message, body)
    request = _request(celery_app, message)

    assert request.content_type is None and request.content_encoding is None
    handed = pickle.dumps(request.body)  # what the pool unpickles
    args, kwargs, embed = pickle.loads(handed)  # noqa: S301
    assert kwargs == {} and embed == EMBED
    assert isinstance(args[0], RawCall) and args[0].decode() == payload
    assert message._decoded_cache is not None, "Celery's strategy reads it instead of decoding"


def test_a_body_the_guard_decoded_goes_to_the_pool_as_celery_sends_it(celery_app: Any) -> None:
    body = task_body([factories.small_payload(6)], {"extra": 1})
    message = _message(body)
    assert not _keep_payload_undecoded(message, body)
    request = _request(celery_app, message)
    assert request.body == body and request.content_type == "application/json"
