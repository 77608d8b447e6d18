"""The archive of expired partitions: its bookkeeping, its exports and their verification.

``archived_partitions`` (revision 0002) gets a row *before* a partition is detached, so a run
killed between the detach and the move into the ``archive`` schema knows what to finish; the
row is updated in the same transaction as each later step (archived, exported, dropped).

An export is the partition's ``COPY`` text, gzip-compressed, next to a JSON manifest. While the
file is written its rows are counted and digested; before the partition is dropped the file is
read back and the table copied again, and both must give the recorded count and digest. The
digest is order-independent (the sum of each row's 128-bit BLAKE2b hash, modulo 2**128), so a
``VACUUM FULL`` or ``CLUSTER`` of the archived table in the meantime does not fail it, while a
changed, lost or added row does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from models.enums import ArchiveStatus
from worker.durable import atomic_writer, write_atomically
from worker.errors import ExportMismatch
from worker.maintenance.partitions import ARCHIVE_SCHEMA, Partition, month_bounds

_MODULUS = 1 << 128
_READ_CHUNK = 1 << 20
#: gzip level 6: most of level 9's ratio on COPY text at a fraction of its CPU.
_COMPRESS_LEVEL = 6


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    id: uuid.UUID
    parent_table: str
    partition_name: str
    month: date
    status: str
    archive_name: str | None
    detach_started_at: datetime
    archived_at: datetime | None
    row_estimate: int | None
    row_count: int | None
    checksum: str | None
    export_path: str | None
    exported_at: datetime | None
    verified_at: datetime | None
    dropped_at: datetime | None
    last_error: str | None


_COLUMNS = sql.SQL(", ").join(sql.Identifier(name) for name in ArchiveRecord.__dataclass_fields__)


class RowDigest:
    """Count and order-independent digest of ``COPY`` text rows, fed in arbitrary chunks."""

    def __init__(self) -> None:
        self.rows = 0
        self._sum = 0
        self._tail = b""

    def feed(self, data: bytes) -> None:
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            self._add(line)

    def _add(self, line: bytes) -> None:
        self.rows += 1
        digest = hashlib.blake2b(line, digest_size=16).digest()
        self._sum = (self._sum + int.from_bytes(digest, "big")) % _MODULUS

    def result(self) -> tuple[int, str]:
        """``(rows, hex digest)``; a last row without its newline still counts."""
        if self._tail:
            self._add(self._tail)
            self._tail = b""
        return self.rows, f"{self._sum:032x}"


def digest_chunks(chunks: Iterable[bytes]) -> tuple[int, str]:
    digest = RowDigest()
    for chunk in chunks:
        digest.feed(chunk)
    return digest.result()


# -- records ---------------------------------------------------------------------------------


def record_detach(conn: psycopg.Connection[Any], partition: Partition, *, now: datetime) -> None:
    """Note that ``partition`` is about to be detached (idempotent while one is in flight);
    ``callstore_record_detach`` is the statement ``cleanup_old_partitions()`` runs too."""
    assert partition.month is not None
    conn.execute(
        "SELECT callstore_record_detach(%s, %s, %s, %s)",
        (partition.table, partition.name, partition.month, now),
    )


def note_error(conn: psycopg.Connection[Any], record_id: uuid.UUID, error: str) -> None:
    conn.execute(
        "UPDATE archived_partitions SET last_error = %s WHERE id = %s", (error[:4000], record_id)
    )


def note_detach_error(conn: psycopg.Connection[Any], partition_name: str, error: str) -> None:
    conn.execute(
        "UPDATE archived_partitions SET last_error = %s"
        " WHERE partition_name = %s AND status = 'detaching'",
        (error[:4000], partition_name),
    )


def records(
    conn: psycopg.Connection[Any], *, statuses: Iterable[ArchiveStatus] | None = None
) -> list[ArchiveRecord]:
    """Records (all, or those in ``statuses``), oldest month first."""
    query = sql.SQL("SELECT {} FROM archived_partitions").format(_COLUMNS)
    params: tuple[Any, ...] = ()
    if statuses is not None:
        query += sql.SQL(" WHERE status = ANY(%s)")
        params = ([s.value for s in statuses],)
    query += sql.SQL(" ORDER BY month, parent_table, detach_started_at")
    with conn.cursor(row_factory=class_row(ArchiveRecord)) as cursor:
        return cursor.execute(query, params).fetchall()


def get(conn: psycopg.Connection[Any], record_id: uuid.UUID) -> ArchiveRecord:
    with conn.cursor(row_factory=class_row(ArchiveRecord)) as cursor:
        record = cursor.execute(
            sql.SQL("SELECT {} FROM archived_partitions WHERE id = %s").format(_COLUMNS),
            (record_id,),
        ).fetchone()
    assert record is not None
    return record


# -- export ----------------------------------------------------------------------------------


def export_path(
    export_dir: Path, parent_table: str, partition_name: str, *, archived_at: datetime
) -> Path:
    """Where a partition archived at ``archived_at`` is exported: one file per archiving, so
    a later archive of the same month never overwrites an earlier export."""
    stamp = archived_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return export_dir / parent_table / f"{partition_name}.{stamp}.copy.gz"


def _columns(conn: psycopg.Connection[Any], name: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname FROM pg_attribute a
         WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))
           AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum
        """,
        (ARCHIVE_SCHEMA, name),
    ).fetchall()
    return [row[0] for row in rows]


def _copy_out(conn: psycopg.Connection[Any], name: str, columns: list[str]) -> Iterator[bytes]:
    statement = sql.SQL("COPY {table} ({cols}) TO STDOUT").format(
        table=sql.Identifier(ARCHIVE_SCHEMA, name),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in copy:
            yield bytes(chunk)


def export(
    conn: psycopg.Connection[Any], record: ArchiveRecord, *, path: Path, now: datetime
) -> Path:
    """Write ``archive.<archive_name>`` to the gzip file ``path`` (``export_path``) with its
    manifest; record count and digest.

    The file is written durably (``worker.durable``), its manifest in place before it, so a
    killed export leaves no file that looks complete; the record is updated only once the file
    is in place.
    """
    assert record.archive_name is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = _columns(conn, record.archive_name)
    digest = RowDigest()
    with atomic_writer(path) as raw:
        with gzip.GzipFile(
            filename=path.name.removesuffix(".gz"),
            mode="wb",
            fileobj=raw,
            compresslevel=_COMPRESS_LEVEL,
        ) as compressed:
            for chunk in _copy_out(conn, record.archive_name, columns):
                digest.feed(chunk)
                compressed.write(chunk)
        rows, checksum = digest.result()
        _write_manifest(path, record, columns, rows, checksum)
    conn.execute(
        """
        UPDATE archived_partitions
           SET row_count = %s, checksum = %s, export_path = %s, exported_at = %s,
               last_error = NULL
         WHERE id = %s
        """,
        (rows, checksum, str(path), now, record.id),
    )
    return path


def _write_manifest(
    path: Path, record: ArchiveRecord, columns: list[str], rows: int, checksum: str
) -> None:
    """The export's manifest, in place before the export itself is."""
    assert record.archive_name is not None
    assert record.archived_at is not None
    lower, upper = month_bounds(record.month)
    manifest = {
        "format": "PostgreSQL COPY text, gzip",
        "table": record.parent_table,
        "partition": record.partition_name,
        "archived_as": f"{ARCHIVE_SCHEMA}.{record.archive_name}",
        "range": [lower.isoformat(), upper.isoformat()],
        "columns": columns,
        "rows": rows,
        "checksum": checksum,
        "checksum_algorithm": "sum of BLAKE2b-128 of each row mod 2**128 (order-independent)",
        "archived_at": record.archived_at.isoformat(),
        "restore": f"gunzip -c {path.name} | psql -c "
        f'"COPY {record.parent_table} ({", ".join(columns)}) FROM STDIN"',
    }
    manifest_path = path.with_name(path.name.removesuffix(".copy.gz") + ".json")
    write_atomically(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())


def _file_chunks(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            yield chunk


def verify(conn: psycopg.Connection[Any], record: ArchiveRecord, *, now: datetime) -> None:
    """Raise ``ExportMismatch`` unless the export file and the archived table both hold exactly
    the recorded rows; note the verification time when they do."""
    assert record.archive_name is not None
    assert record.export_path is not None
    expected = (record.row_count, record.checksum)
    path = Path(record.export_path)
    if not path.is_file():
        raise ExportMismatch(f"export {path} of {record.archive_name} is missing")
    try:
        in_file = digest_chunks(_file_chunks(path))
    except (OSError, EOFError) as error:
        raise ExportMismatch(f"export {path} cannot be read back: {error}") from error
    if in_file != expected:
        raise ExportMismatch(
            f"export {path} holds {in_file[0]} rows (checksum {in_file[1]}), "
            f"recorded {expected[0]} rows (checksum {expected[1]})"
        )
    columns = _columns(conn, record.archive_name)
    in_table = digest_chunks(_copy_out(conn, record.archive_name, columns))
    if in_table != expected:
        raise ExportMismatch(
            f"{ARCHIVE_SCHEMA}.{record.archive_name} holds {in_table[0]} rows "
            f"(checksum {in_table[1]}), its export {expected[0]} rows (checksum {expected[1]})"
        )
    conn.execute(
        "UPDATE archived_partitions SET verified_at = %s, last_error = NULL WHERE id = %s",
        (now, record.id),
    )
