"""The official Azure SDK clients, with a retry policy fit for batches, and error translation.

Both SDKs retry transient failures themselves (connection errors, HTTP 5xx; Tables also 429).
Their defaults are tuned for interactive use (Blob waits 15 s, 18 s, 24 s; Tables tries 10
times): a batch should rather give up after a few quick tries and let Celery retry the task
with its own backoff, from the same checkpoint. What is left after the SDK's retries is
translated here into our error tree, with a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from worker.errors import AzureRefused, AzureUnavailable, MigrationNotConfigured
from worker.settings import Settings

#: Status codes that mean "busy or briefly broken": throttling (429, 503 ServerBusy), timeouts
#: and gateway errors. Anything else is a request retrying cannot fix.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """How hard the SDKs try before a batch gives up (and Celery retries it later).

    Tables waits ``backoff_factor * 2 ** (attempt - 1)`` seconds (at most ``backoff_max``); Blob
    waits ``backoff_factor + (2 * backoff_factor) ** attempt`` seconds, jittered. The defaults
    (``CALLSTORE_AZURE_RETRY_TOTAL``, ``CALLSTORE_AZURE_RETRY_BACKOFF_SECONDS``) give up after
    about 15 s of trouble.
    """

    total: int = 4
    backoff_factor: float = 0.8
    backoff_max: float = 20.0
    connection_timeout: float = 10.0
    read_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryOptions:
        return cls(
            total=settings.azure_retry_total, backoff_factor=settings.azure_retry_backoff_seconds
        )

    def table_kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.total,
            "retry_backoff_factor": self.backoff_factor,
            "retry_backoff_max": self.backoff_max,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }

    def blob_kwargs(self) -> dict[str, Any]:
        policy = ExponentialRetry(
            initial_backoff=self.backoff_factor,  # type: ignore[arg-type]  # floats work
            increment_base=2 * self.backoff_factor,  # type: ignore[arg-type]
            retry_total=self.total,
            random_jitter_range=self.backoff_factor,  # type: ignore[arg-type]
        )
        return {
            "retry_policy": policy,
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
        }


class AzureStorage:
    """The table and blob clients of one storage account."""

    def __init__(self, connection_string: str, retry: RetryOptions | None = None) -> None:
        retry = retry or RetryOptions()
        self.tables = TableServiceClient.from_connection_string(
            connection_string, **retry.table_kwargs()
        )
        self.blobs = BlobServiceClient.from_connection_string(
            connection_string, **retry.blob_kwargs()
        )

    def table(self, name: str) -> TableClient:
        return self.tables.get_table_client(name)

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    def close(self) -> None:
        self.tables.close()
        self.blobs.close()

    def __enter__(self) -> AzureStorage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def storage_from_settings(settings: Settings, retry: RetryOptions | None = None) -> AzureStorage:
    """The storage account of ``CALLSTORE_AZURE_CONNECTION_STRING``."""
    secret = settings.azure_connection_string
    if secret is None or not secret.get_secret_value().strip():
        raise MigrationNotConfigured(
            "CALLSTORE_AZURE_CONNECTION_STRING is not set: the migration needs the connection"
            " string of the legacy Azure Storage account"
        )
    try:
        return AzureStorage(
            secret.get_secret_value(), retry or RetryOptions.from_settings(settings)
        )
    except ValueError as error:  # the SDK's parser: never echo the string, it holds the key
        raise MigrationNotConfigured(
            f"CALLSTORE_AZURE_CONNECTION_STRING is not a valid connection string: {error}"
        ) from None


@contextmanager
def translate_azure_errors(what: str) -> Iterator[None]:
    """Re-raise what the SDK gave up on as ``AzureUnavailable`` (retry later) or
    ``AzureRefused`` (fix the configuration), naming ``what`` was being done."""
    try:
        yield
    except ClientAuthenticationError as error:
        raise AzureRefused(
            f"{what}: Azure Storage refused the credentials (HTTP {error.status_code}):"
            " check CALLSTORE_AZURE_CONNECTION_STRING"
        ) from error
    except HttpResponseError as error:
        status = error.status_code
        code = getattr(error, "error_code", None) or (error.reason or "")
        if status is None or status in RETRYABLE_STATUS:
            kind = "throttled the migration" if status in (429, 503) else "failed"
            raise AzureUnavailable(
                f"{what}: Azure Storage {kind} (HTTP {status} {code}) even after retries;"
                " the batch will be retried from its checkpoint"
            ) from error
        raise AzureRefused(
            f"{what}: Azure Storage refused the request (HTTP {status} {code})"
        ) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        raise AzureUnavailable(
            f"{what}: cannot reach Azure Storage ({_first_line(error)}); the batch will be"
            " retried from its checkpoint"
        ) from error


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
