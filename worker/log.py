"""Logging for every callstore process: structlog on top of the standard library.

JSON lines in production (``CALLSTORE_LOG_FORMAT=json``), readable lines in development. Records
from other libraries (Celery, kombu, SQLAlchemy) and from ``logging`` calls with ``extra=`` go
through the same processors, so every line has the same shape. Context such as ``task_id`` and
``call_id`` is bound with ``structlog.contextvars`` and appears on every line of that task.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from worker.settings import Settings

#: Keys whose values never reach a log line (secrets, personal data).
REDACTED_KEYS = frozenset(
    {
        "password",
        "database_url",
        "broker_url",
        "azure_connection_string",
        "connection_string",
        "content",
        "transcript_text",
        "from_number",
        "to_number",
        "phone_number",
    }
)
REDACTED = "[redacted]"


def redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the values of sensitive keys before any renderer sees them."""
    for key in REDACTED_KEYS.intersection(event_dict):
        event_dict[key] = REDACTED
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
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
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
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
