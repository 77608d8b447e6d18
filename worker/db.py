"""Database access: one lazily created engine per process, the transaction scope, and the one
place driver errors are translated into callstore's error tree (``worker.errors``).

No engine exists at import time. Celery's prefork pool forks worker children from a parent
that may have touched the database; a pool inherited across a fork shares sockets between
processes (hung queries, "bad record mac"), so ``dispose_engine`` runs in every child
(``worker_process_init``) and at shutdown, and the next use builds a fresh engine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from worker.errors import (
    CallstoreError,
    ConcurrencyConflict,
    ConstraintViolation,
    DatabaseRefused,
    DatabaseUnavailable,
    DuplicateKey,
    PartitionMissing,
)
from worker.settings import Settings, get_settings

_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")
#: Refusals of the database's own state, not of the data: read-only transaction, insufficient
#: privilege, snapshot too old, and the internal-error class (``XX``: corrupted data or index).
_REFUSED_SQLSTATES = frozenset({"25006", "42501", "72000"})
_REFUSED_SQLSTATE_CLASSES = ("XX",)

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
    if sqlstate in _REFUSED_SQLSTATES or sqlstate[:2] in _REFUSED_SQLSTATE_CLASSES:
        return DatabaseRefused(message)
    if isinstance(original, pg_errors.UniqueViolation):
        return DuplicateKey(message)
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


_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid: int | None = None


def build_engine(settings: Settings) -> Engine:
    """An engine for ``settings``: small pool (one task at a time per process), pre-ping so a
    restarted PostgreSQL costs one failed check rather than one failed task. Statement
    parameters are call data: they are kept out of exception messages (``hide_parameters``),
    so a failed statement never writes a transcript or a phone number into a log line."""
    engine = create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=2,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={"connect_timeout": 5, "application_name": "callstore"},
    )
    statement_timeout = str(int(settings.statement_timeout_ms))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)", (statement_timeout,)
            )
            cursor.execute("SET lock_timeout = '10s'")
        dbapi_connection.commit()

    return engine


def get_engine() -> Engine:
    """This process's engine, created on first use (and again after a fork)."""
    global _engine, _engine_pid
    pid = os.getpid()
    if _engine is None or _engine_pid != pid:
        with _lock:
            if _engine is None or _engine_pid != pid:
                _engine = build_engine(get_settings())
                _engine_pid = pid
    return _engine


def dispose_engine() -> None:
    """Forget this process's pool without closing sockets a parent process may still own."""
    global _engine, _engine_pid
    with _lock:
        if _engine is not None:
            _engine.dispose(close=_engine_pid == os.getpid())
        _engine = None
        _engine_pid = None


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error, driver errors translated.

    The caller owns the transaction; helpers that receive the session never commit.
    """
    with (
        translate_database_errors(),
        Session(engine or get_engine()) as session,
        session.begin(),
    ):
        yield session


#: A maintenance statement waits at most this long for a lock (DDL behind a long reader):
#: it fails, and the next run finishes what it left.
MAINTENANCE_LOCK_TIMEOUT = "60s"


@contextmanager
def maintenance_connection(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A dedicated autocommit connection for partition DDL and retention.

    Autocommit because ``DETACH PARTITION ... CONCURRENTLY`` cannot run in a transaction
    block; every step opens its own short transaction. No statement timeout (an export copies a
    whole month), but a lock timeout, so maintenance never queues behind a lock for long.
    """
    with (
        translate_database_errors(),
        psycopg.connect(
            settings.libpq_url,
            autocommit=True,
            connect_timeout=10,
            application_name="callstore-maintenance",
            options=f"-c lock_timeout={MAINTENANCE_LOCK_TIMEOUT}",
        ) as conn,
    ):
        yield conn


def raw_connection(session: Session) -> psycopg.Connection[Any]:
    """The psycopg connection under ``session``'s transaction, for COPY and pipelined bulk SQL."""
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver
