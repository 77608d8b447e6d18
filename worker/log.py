"""Logging for every callstore process: structlog on top of the standard library.

JSON lines in production (``CALLSTORE_LOG_FORMAT=json``), readable lines in development. Records
from other libraries (Celery, kombu, SQLAlchemy, Flower) and from ``logging`` calls with ``extra=``
go through the same processors, so every line has the same shape. Context such as ``task_id``,
``task`` and ``call_id`` is bound with ``structlog.contextvars`` around each task
(``worker.celery_app``) and appears on every line the task writes; Celery's own task lines
("received", "succeeded", "retry") carry the same fields, read from the record.

Nothing personal or secret reaches a line: the values of sensitive keys are replaced, and every
string (the message, fields, rendered tracebacks) is scrubbed of URL passwords, Azure keys and
phone numbers as the last step before rendering.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from worker.settings import ClientSettings

#: Keys whose values never reach a log line (secrets, personal data, call content).
REDACTED_KEYS = frozenset(
    {
        "password",
        "secret",
        "token",
        "authorization",
        "api_key",
        "database_url",
        "broker_url",
        "result_backend",
        "azure_connection_string",
        "connection_string",
        "flower_basic_auth",
        "basic_auth",
        "payload",
        "content",
        "transcript",
        "transcript_text",
        "summary",
        "from_number",
        "to_number",
        "phone_number",
    }
)
REDACTED = "[redacted]"

#: ``scheme://user:PASSWORD@host`` in any URL.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+(?=@)", re.I)
#: ``AccountKey=...``, ``SharedAccessSignature=...`` (connection strings), ``sig=...`` (SAS),
#: ``password=...`` (libpq keyword form).
_KEY_VALUE_SECRET = re.compile(
    r"(?P<head>\b(?:AccountKey|SharedAccessSignature|SharedAccessKey|sig|password)\s*=\s*)"
    r"(?:'[^']*'|[^;&\s'\"]+)",
    re.I,
)
#: E.164 phone numbers (``+`` and 8 to 15 digits), the form the runtime records.
_PHONE = re.compile(r"(?<![\w+])\+\d{8,15}\b")
#: Where Celery's lines about a refused or undecodable message start quoting the message body.
_MESSAGE_BODY_MARKERS = ("The full contents of the message body was", "\nbody: ")
#: How ``worker.client.publisher.payload_repr`` shows a call in task arguments.
_CALL_REPR = re.compile(r"<call (?P<call_id>[0-9a-f-]{36}) revision \d+>")


def scrub(text: str) -> str:
    """``text`` without URL passwords, Azure keys and signatures, or phone numbers."""
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    text = _KEY_VALUE_SECRET.sub(r"\g<head>***", text)
    return _PHONE.sub("[phone]", text)


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if str(k).lower() in REDACTED_KEYS else _clean(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the values of sensitive keys and scrub every string, nested ones included.

    Runs last, after tracebacks were rendered to text, so an exception message is scrubbed too.
    """
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _clean(event_dict[key])
    return event_dict


def celery_task_fields(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Give Celery's own task lines the fields our task lines have.

    Celery logs "Task NAME[ID] received/succeeded/retry ..." with a dict of format arguments
    (and the same dict again as ``extra={'data': ...}``). Take ``task_id`` and ``task`` from it,
    and ``call_id`` from the argument summary of a call; drop the ``data`` copy, whose argument
    and return value reprs are not ours to vouch for. A refused message (not JSON, unknown task)
    is logged without the body Celery would quote: it may be a whole call.
    """
    arguments = event_dict.pop("positional_args", None)
    record = event_dict.get("_record")
    if record is None or not record.name.startswith("celery"):
        return event_dict
    event_dict.pop("data", None)
    event = event_dict.get("event")
    if isinstance(event, str):
        for marker in _MESSAGE_BODY_MARKERS:
            if marker in event:
                event = event[: event.index(marker)].rstrip() + "\n(message body not logged)"
        event_dict["event"] = event
    if not isinstance(arguments, Mapping):
        return event_dict
    if "id" in arguments and "name" in arguments:
        event_dict.setdefault("task_id", str(arguments["id"]))
        event_dict.setdefault("task", str(arguments["name"]))
        match = _CALL_REPR.search(str(arguments.get("args") or ""))
        if match:
            event_dict.setdefault("call_id", match["call_id"])
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(settings: ClientSettings, *, stream: Any = None) -> None:
    """Route structlog and the standard library through one formatter on stderr."""
    shared = _shared_processors()
    renderer: Processor
    if settings.log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), celery_task_fields],
        pass_foreign_args=True,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("sqlalchemy.engine", "azure.core.pipeline.policies.http_logging_policy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
