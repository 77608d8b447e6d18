"""The error tree of callstore, and the one place driver errors are translated into it.

Tasks decide what to do from the class alone:

* ``PermanentError`` — retrying cannot help (invalid payload, violated constraint): the payload
  goes to the dead-letter table at once.
* ``TransientError`` — the same work may succeed later (database restarting, serialization
  conflict, lock timeout): retried with exponential backoff and jitter.
* ``DatabaseUnavailable`` — a transient error during which not even the dead-letter table can be
  written, so the payload must stay in the queue (or the runtime's spool) until PostgreSQL is back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc


class CallstoreError(Exception):
    """Base of every error callstore raises on purpose."""


class PermanentError(CallstoreError):
    """Retrying cannot succeed; the payload is dead-lettered."""


class PayloadInvalid(PermanentError):
    """The payload does not satisfy the contract in ``models.payload``."""


class PayloadTooLarge(PayloadInvalid):
    """The payload is over ``CALLSTORE_MAX_PAYLOAD_BYTES``."""


class ConstraintViolation(PermanentError):
    """PostgreSQL refused the data itself (a CHECK, a length, a NUL character, ...)."""


class ExportMismatch(PermanentError):
    """An archived partition's export does not match the table (row count or checksum): the
    partition is kept, not dropped, until an operator looks."""


class TransientError(CallstoreError):
    """The same work may succeed later."""


class DatabaseUnavailable(TransientError):
    """PostgreSQL cannot be reached or is shutting down or starting up."""


class ConcurrencyConflict(TransientError):
    """Serialization failure, deadlock or lock timeout: retry the whole transaction."""


class PartitionMissing(TransientError):
    """A row's timestamp falls in a month that has no partition yet; make it and retry."""


class BrokerUnavailable(TransientError):
    """The Celery broker could not be reached."""


class MaintenanceIncomplete(TransientError):
    """A maintenance run did what it could but some steps failed; the next run resumes them."""


class AzureUnavailable(TransientError):
    """Azure Storage could not be reached, or kept throttling (HTTP 429/503), after the SDK's own
    retries; the migration batch is retried later from the same checkpoint."""


class AzureRefused(PermanentError):
    """Azure Storage refused a request for a reason retrying cannot fix (credentials, a bad
    request); an operator must change the configuration."""


class MigrationNotConfigured(PermanentError):
    """The Azure migration needs ``CALLSTORE_AZURE_CONNECTION_STRING``."""


_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")

_CONFLICT_ERRORS: tuple[type[Exception], ...] = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,
)


def classify(error: BaseException) -> CallstoreError | None:
    """Our error for a driver ``error``, or None when it is not a database error we know."""
    original: BaseException = error
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        original = error.orig
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return DatabaseUnavailable(_message(original))
    if not isinstance(original, psycopg.Error):
        if isinstance(error, sa_exc.TimeoutError):
            return DatabaseUnavailable(f"connection pool exhausted: {error}")
        return None
    message = _message(original)
    if isinstance(original, pg_errors.CheckViolation) and "no partition of relation" in message:
        return PartitionMissing(message)
    if isinstance(original, _CONFLICT_ERRORS):
        return ConcurrencyConflict(message)
    sqlstate = original.sqlstate or ""
    if isinstance(original, psycopg.OperationalError) and not sqlstate:
        return DatabaseUnavailable(message)
    if sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return DatabaseUnavailable(message)
    if isinstance(original, psycopg.IntegrityError | psycopg.DataError):
        return ConstraintViolation(message)
    if isinstance(original, psycopg.InterfaceError):
        return DatabaseUnavailable(message)
    return None


@contextmanager
def translate_database_errors() -> Iterator[None]:
    """Re-raise known driver errors as callstore errors; let anything else through unchanged."""
    try:
        yield
    except CallstoreError:
        raise
    except (psycopg.Error, sa_exc.DBAPIError, sa_exc.TimeoutError) as error:
        translated = classify(error)
        if translated is None:
            raise
        raise translated from error


def _message(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
