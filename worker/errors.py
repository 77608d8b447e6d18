"""The error tree of callstore. Tasks and the CLI decide what to do from the class alone:

* ``PermanentError`` — retrying cannot help (invalid payload, violated constraint): the payload
  goes to the dead-letter table at once.
* ``TransientError`` — the same work may succeed later (database restarting, serialization
  conflict, lock timeout): retried with exponential backoff and jitter.
* ``DatabaseUnavailable`` — a transient error during which not even the dead-letter table can be
  written, so the payload must stay in the queue (or the runtime's spool) until PostgreSQL is back;
  ``DatabaseRefused`` is the same for a PostgreSQL that answers but refuses every write (a
  read-only standby after a failover, a revoked privilege, an internal error).
* ``ConfigurationError`` — a setting is wrong or missing; nothing works until an operator fixes it.

Only the tree lives here, with no third-party import, so the runtime client can raise and catch
these classes without loading a database driver; driver errors are translated where the engine is
(``worker.db.translate_database_errors``).
"""

from __future__ import annotations


class CallstoreError(Exception):
    """Base of every error callstore raises on purpose."""


class ConfigurationError(CallstoreError):
    """A ``CALLSTORE_*`` setting is missing or invalid; the message names each variable, never
    its value (``worker.settings.describe_error``)."""


class InvalidRecording(CallstoreError, ValueError):
    """A recording method of ``CallRecorder`` was given an argument the payload contract refuses;
    the message names the argument. Raised at the call site, so the runtime sees its mistake
    where it makes it instead of a worker dead-lettering the whole call later."""


class PermanentError(CallstoreError):
    """Retrying cannot succeed; the payload is dead-lettered."""


class PayloadInvalid(PermanentError):
    """The payload does not satisfy the contract in ``models.payload``."""


class PayloadTooLarge(PayloadInvalid):
    """The payload is over ``CALLSTORE_MAX_PAYLOAD_BYTES``."""


class MessageRevoked(PermanentError):
    """An operator revoked the message (Flower, ``celery control revoke``), terminated its task,
    or it expired before a worker ran it: the call is kept as a dead letter, never dropped."""


class MessageRefused(PermanentError):
    """The worker refused a message before any task ran it (``worker.intake``); it is kept in
    ``failed_payloads`` with the bytes that arrived."""


class MessageUndecodable(MessageRefused):
    """The body is not JSON the worker accepts (cut short, another content type, not UTF-8)."""


class MessageExpired(MessageRefused):
    """The message carried an expiry that has passed; a call is kept, never dropped for it."""


class MessageMoved(MessageRefused):
    """An operator moved the message out of its queue (``callstore queue move``)."""


class PoisonMessage(MessageRefused):
    """The message's worker died on each of its last ``CALLSTORE_POISON_DELIVERIES``
    deliveries; it is not run again."""


class ConstraintViolation(PermanentError):
    """PostgreSQL refused the data itself (a CHECK, a length, a NUL character, ...)."""


class DuplicateKey(ConstraintViolation):
    """A unique index refused a row: for a call row, a concurrent delivery of the same call
    won the insert (a race the finalize service retries, never a permanent error)."""


class RevisionConflict(PermanentError):
    """The call is stored under this revision with other content, and the rule keeps the
    stored one; the delivery is kept in ``failed_payloads`` (``call_conflicts`` records it)."""


class ExportMismatch(PermanentError):
    """An archived partition's export does not match the table (row count or checksum): the
    partition is kept, not dropped, until an operator looks."""


class TransientError(CallstoreError):
    """The same work may succeed later."""


class DatabaseUnavailable(TransientError):
    """PostgreSQL cannot be reached or is shutting down or starting up."""


class DatabaseRefused(DatabaseUnavailable):
    """PostgreSQL answers but refuses the work for a reason of its own state, not of the data:
    read-only (a standby after a failover, a primary put in read-only mode), a missing
    privilege, an internal error. The dead-letter table is refused the same way, so the payload
    waits in the queue, as in an outage, until an operator fixes the database."""


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
