"""Reading the legacy sources page by page, incrementally, with the official SDKs.

A pass reads one source in key order (``by_page()`` with the SDK's continuation token), never
more than one page in memory per request. Tables are filtered by the service on the entity
``Timestamp`` (``Timestamp ge <since>``); containers cannot be filtered by the service, so their
listing is paged the same way and only blobs modified since ``since`` are downloaded.

The continuation token is whatever the SDK hands back: a dict of next keys for Tables, a marker
string for Blob. Both are JSON, so the checkpoint stores them as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from worker.azure.client import AzureStorage, translate_azure_errors
from worker.azure.sources import Source, SourceKind

#: The most entities Azure Tables returns per request.
MAX_PAGE = 1000


def utc(value: datetime) -> datetime:
    """``value`` as an aware ``datetime`` in UTC (naive means UTC)."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=UTC,
    )


@dataclass(frozen=True, slots=True)
class TableRecord:
    """One entity: its keys, the service ``Timestamp`` and its properties (keys excluded)."""

    partition_key: str
    row_key: str
    timestamp: datetime
    properties: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.partition_key}/{self.row_key}"


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """One blob: its name, last-modified time, metadata and bytes."""

    name: str
    timestamp: datetime
    body: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.name


Record = TableRecord | BlobRecord


@dataclass(frozen=True, slots=True)
class Page:
    """What one request returned. ``continuation`` is None when the pass is complete."""

    records: list[Record]
    continuation: Any
    listed: int = 0

    @property
    def complete(self) -> bool:
        return self.continuation is None

    @property
    def newest(self) -> datetime | None:
        return max((r.timestamp for r in self.records), default=None)


def read_pages(
    storage: AzureStorage,
    source: Source,
    *,
    since: datetime | None,
    continuation: Any,
    limit: int,
) -> Iterator[Page]:
    """Pages of ``source`` from ``continuation`` on, until about ``limit`` records were read or the
    pass is complete (a page with ``continuation`` None). A missing table or container reads as
    empty: the legacy account may never have had it."""
    remaining = max(1, limit)
    while remaining > 0:
        size = min(MAX_PAGE, remaining)
        if source.kind is SourceKind.TABLE:
            page = _table_page(storage, source.name, since, continuation, size)
        else:
            page = _blob_page(storage, source.name, since, continuation, size)
        yield page
        if page.complete:
            return
        continuation = page.continuation
        remaining -= max(page.listed, 1)


def _table_page(
    storage: AzureStorage, table: str, since: datetime | None, continuation: Any, size: int
) -> Page:
    client = storage.table(table)
    with translate_azure_errors(f"reading table {table}"):
        try:
            if since is None:
                pager = client.list_entities(results_per_page=size).by_page(
                    continuation_token=continuation
                )
            else:
                pager = client.query_entities(
                    "Timestamp ge @since", parameters={"since": since}, results_per_page=size
                ).by_page(continuation_token=continuation)
            entities = list(next(pager, []))
        except ResourceNotFoundError:
            return Page([], None)
        token = pager.continuation_token  # type: ignore[attr-defined]
        _release(pager)
    records: list[Record] = [to_record(entity) for entity in entities]
    return Page(records, token or None, len(records))


def _release(pager: Any) -> None:
    """Let a page go as soon as it is read. azure-core's page iterator keeps bound methods of
    itself (a reference cycle), so the page it holds (the response, every entity) would
    otherwise wait for a full garbage collection, and memory would grow with the number of
    pages read. Only references are dropped; the pager is not used again."""
    for name in ("_get_next", "_extract_data", "_response", "_current_page", "_headers"):
        if hasattr(pager, name):
            setattr(pager, name, None)


def to_record(entity: Mapping[str, Any]) -> TableRecord:
    """A ``TableRecord`` of an SDK entity (a ``TableEntity``: a dict with ``metadata``)."""
    properties = dict(entity)
    partition_key = str(properties.pop("PartitionKey", ""))
    row_key = str(properties.pop("RowKey", ""))
    stamp = getattr(entity, "metadata", {}).get("timestamp")
    return TableRecord(
        partition_key,
        row_key,
        utc(stamp) if isinstance(stamp, datetime) else datetime.fromtimestamp(0, UTC),
        properties,
    )


def _blob_page(
    storage: AzureStorage, container: str, since: datetime | None, continuation: Any, size: int
) -> Page:
    client = storage.container(container)
    records: list[Record] = []
    with translate_azure_errors(f"reading container {container}"):
        try:
            pager = client.list_blobs(include=["metadata"], results_per_page=size).by_page(
                continuation_token=continuation
            )
            listed = list(next(pager, []))
            token = pager.continuation_token  # type: ignore[attr-defined]
            _release(pager)
            for blob in listed:
                modified = utc(blob.last_modified)
                if since is not None and modified < since:
                    continue
                body = client.download_blob(blob.name).readall()
                records.append(BlobRecord(blob.name, modified, body, dict(blob.metadata or {})))
        except ResourceNotFoundError:
            return Page([], None)
    return Page(records, token or None, len(listed))


@dataclass(frozen=True, slots=True)
class Ahead:
    """What a source holds beyond a position: how many records, and the newest ``Timestamp``."""

    count: int
    newest: datetime | None
    capped: bool = False


def count_ahead(
    storage: AzureStorage,
    source: Source,
    *,
    newer_than: datetime | None,
    inclusive: bool = False,
    after_key: str | None = None,
    cap: int = 100_000,
) -> Ahead:
    """Records with a ``Timestamp`` after ``newer_than`` (or at it, when ``inclusive``) and a key
    after ``after_key``, counted up to ``cap``. Tables are asked for keys only."""
    if source.kind is SourceKind.BLOB:
        return _blobs_ahead(storage, source.name, newer_than, inclusive, after_key, cap)
    clauses = []
    parameters: dict[str, Any] = {}
    if newer_than is not None:
        clauses.append("Timestamp ge @since" if inclusive else "Timestamp gt @since")
        parameters["since"] = newer_than
    if after_key is not None:
        partition_key, _, row_key = after_key.partition("/")
        clauses.append("(PartitionKey gt @pk or (PartitionKey eq @pk and RowKey gt @rk))")
        parameters.update(pk=partition_key, rk=row_key)
    client = storage.table(source.name)
    count = 0
    newest: datetime | None = None
    with translate_azure_errors(f"counting table {source.name}"):
        try:
            query = client.query_entities(
                " and ".join(clauses) or "PartitionKey ne ''",
                parameters=parameters,
                select=["PartitionKey", "RowKey", "Timestamp"],
                results_per_page=MAX_PAGE,
            )
            for entity in query:
                count += 1
                stamp = entity.metadata.get("timestamp")
                if isinstance(stamp, datetime) and (newest is None or stamp > newest):
                    newest = utc(stamp)
                if count >= cap:
                    return Ahead(count, newest, capped=True)
        except ResourceNotFoundError:
            return Ahead(0, None)
    return Ahead(count, newest)


def _blobs_ahead(
    storage: AzureStorage,
    container: str,
    newer_than: datetime | None,
    inclusive: bool,
    after_key: str | None,
    cap: int,
) -> Ahead:
    count = 0
    newest: datetime | None = None
    with translate_azure_errors(f"counting container {container}"):
        try:
            for blob in storage.container(container).list_blobs():
                modified = utc(blob.last_modified)
                if after_key is not None and blob.name <= after_key:
                    continue
                if newer_than is not None and (
                    modified < newer_than or (modified == newer_than and not inclusive)
                ):
                    continue
                count += 1
                newest = modified if newest is None else max(newest, modified)
                if count >= cap:
                    return Ahead(count, newest, capped=True)
        except ResourceNotFoundError:
            return Ahead(0, None)
    return Ahead(count, newest)
