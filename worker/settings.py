"""The settings of callstore, read from ``CALLSTORE_*`` variables and ``.env``.

Every process (worker, beat, CLI, runtime client) reads configuration here and nowhere else, in
one of two shapes: ``ClientSettings`` holds what the call runtime's client (``worker.client``)
needs, and nothing that requires a database, so a runtime host sets only the broker;
``Settings`` extends it with everything the workers, beat and the CLI need. Secrets are
``SecretStr`` so they never appear in a repr, a log line or a traceback. A wrong or missing value
raises ``ConfigurationError`` with one line that names the variable; entry points outside the
CLI stop with that line (``settings_or_exit``).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, NoReturn, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.errors import ConfigurationError

ENV_PREFIX = "CALLSTORE_"

#: Where ``callstore stack up`` writes its connection settings by default; read as an env file
#: so that, after ``stack up`` in a checkout, every command finds the embedded servers.
DEFAULT_STACK_ENV = Path(".callstore/stack.env")

_DATABASE_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")
_BROKER_SCHEMES = ("redis", "rediss", "redis+socket")


class ClientSettings(BaseSettings):
    """What the runtime client reads: the broker, the spool and the hand-off's limits, logging.

    Field ``x`` is variable ``CALLSTORE_X``.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=(str(DEFAULT_STACK_ENV), ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    broker_url: SecretStr = Field(
        description="Redis URL of the Celery broker (redis://, rediss:// or redis+socket:///path).",
    )
    #: Payloads at least this large are sent zlib-compressed (see docs/benchmarks.md).
    compress_min_bytes: Annotated[int, Field(ge=0)] = 256 * 1024

    spool_dir: Path = Path(".callstore/spool")
    #: Seconds an unacknowledged message stays invisible before Redis hands it to another worker.
    #: Must exceed the longest task (docs/operations.md); it also bounds how long a task whose
    #: worker was SIGKILLed waits before it is delivered again. Producers set it too: kombu's
    #: Redis transport reads it on both sides.
    broker_visibility_timeout: Annotated[int, Field(ge=1, le=86400)] = 900
    #: A published call not settled by a worker after this long is published again from the
    #: runtime's outbox (then after twice as long, and so on): it covers what the broker loses
    #: (worker/client/settlement.py). Keep it well above the visibility timeout.
    outbox_redeliver_seconds: Annotated[float, Field(gt=0)] = 1800.0
    #: How long ``CallRecorder`` tries the broker before spooling the payload locally.
    publish_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: How often a call's journal is written to the spool directory: a runtime process that
    #: dies loses at most this much of its calls in progress (worker/client/journal.py).
    journal_flush_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    #: A call in progress is handed off as an ``in_progress`` revision at most this often, for
    #: when the runtime's host itself is lost (0: never; worker/client/checkpoints.py).
    checkpoint_seconds: Annotated[float, Field(ge=0, le=86_400)] = 60.0

    log_format: Literal["json", "console"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: SecretStr) -> SecretStr:
        _require_scheme(value.get_secret_value(), _BROKER_SCHEMES)
        return value


class Settings(ClientSettings):
    """Configuration of the workers, beat and the CLI: the client's settings and the rest."""

    database_url: SecretStr = Field(
        description="PostgreSQL URL (postgresql://user:password@host:port/db, or ?host=/socket/dir).",
    )
    azure_connection_string: SecretStr | None = Field(
        default=None, description="Connection string of the legacy Azure Storage account."
    )
    #: Retries of each Azure request (by the SDK) before a migration batch gives up and its task
    #: is retried by Celery, and the base of their exponential backoff.
    azure_retry_total: Annotated[int, Field(ge=0, le=20)] = 4
    azure_retry_backoff_seconds: Annotated[float, Field(ge=0, le=60)] = 0.8

    retention_days: Annotated[int, Field(ge=0, le=36500)] = 365
    retention_grace_days: Annotated[int, Field(ge=0, le=365)] = 7
    retention_export_dir: Path | None = None
    #: Calls deleted per short transaction by retention (each with all its children).
    retention_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    partition_premake_months: Annotated[int, Field(ge=0, le=36)] = 3
    max_payload_bytes: Annotated[int, Field(ge=1024, le=512 * 1024 * 1024)] = 16 * 1024 * 1024

    #: How far ahead of the receiving worker's clock a call's times may be; beyond, the payload
    #: is refused naming the field (a runtime whose clock says 2200), and no partition is made.
    max_clock_skew: Annotated[int, Field(ge=0, le=7 * 86_400)] = 3600
    #: Deliveries of one message that may end with its worker dead before the next delivery
    #: is dead-lettered instead of run again (a poison message cannot stop the pipeline).
    poison_deliveries: Annotated[int, Field(ge=1, le=100)] = 3

    finalize_max_retries: Annotated[int, Field(ge=0, le=100)] = 8
    finalize_retry_backoff_max: Annotated[int, Field(ge=1, le=3600)] = 60
    worker_max_tasks_per_child: Annotated[int, Field(ge=0)] = 0
    database_pool_size: Annotated[int, Field(ge=1, le=100)] = 2
    statement_timeout_ms: Annotated[int, Field(ge=0)] = 60_000

    migration_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 500
    #: Each pass over a legacy source re-reads entities this much older than the last watermark,
    #: so a write whose service Timestamp lags behind (clock skew between storage nodes, a write
    #: in flight while the pass went by) is still picked up.
    migration_overlap_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300

    #: A call still ``in_progress`` this long after it started is reported as stuck.
    check_stuck_after_seconds: Annotated[int, Field(ge=60)] = 4 * 3600
    #: A call announced this long ago and never finalized means its runtime died mid-call.
    check_unfinalized_after_seconds: Annotated[int, Field(ge=60)] = 2 * 3600
    #: A call whose last checkpoint (``in_progress``) was stored this long ago and that was
    #: neither finalized nor recovered since: its runtime's host was lost.
    check_stale_in_progress_seconds: Annotated[int, Field(ge=1)] = 3600
    #: A spool file this old means a finalized call is not reaching the broker.
    check_spool_age_seconds: Annotated[int, Field(ge=1)] = 600

    #: Flower's operators, ``user:password`` pairs separated by commas (Flower's own format):
    #: they may control workers and tasks (``worker/monitoring/flower_roles.py``).
    flower_basic_auth: SecretStr | None = None
    #: Flower's viewers, in the same format: they may read everything and change nothing.
    flower_viewers: SecretStr | None = None
    #: Let Flower run without users (e.g. behind an authenticating proxy). Without users or
    #: this, Flower refuses to start.
    flower_allow_anonymous: bool = False
    #: Path prefix when Flower is served under a sub-path of a reverse proxy (``flower``).
    flower_url_prefix: str = ""
    #: Where Flower keeps its task history across restarts.
    flower_db: Path = Path(".callstore/flower.db")

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: SecretStr) -> SecretStr:
        _require_scheme(value.get_secret_value(), _DATABASE_SCHEMES)
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """``database_url`` in the form SQLAlchemy needs to use psycopg 3."""
        url = self.database_url.get_secret_value()
        scheme, rest = url.split("://", 1)
        if scheme in ("postgresql", "postgres"):
            scheme = "postgresql+psycopg"
        return f"{scheme}://{rest}"

    @property
    def libpq_url(self) -> str:
        """``database_url`` in the form psycopg and libpq take directly."""
        url = self.database_url.get_secret_value()
        return "postgresql://" + url.split("://", 1)[1]


def _require_scheme(url: str, schemes: tuple[str, ...]) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        shown = scheme or "(none)"
        raise ValueError(f"scheme {shown!r} is not one of {', '.join(schemes)}")


_Loaded = TypeVar("_Loaded", bound=ClientSettings)


def _load(kind: type[_Loaded]) -> _Loaded:
    try:
        return kind()
    except ValidationError as error:
        # ``from None``: pydantic's own message quotes the input, which may be a secret.
        raise ConfigurationError(describe_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; ``ConfigurationError`` when one is wrong. Tests
    build ``Settings(...)`` directly instead."""
    return _load(Settings)


@lru_cache(maxsize=1)
def get_client_settings() -> ClientSettings:
    """The runtime client's settings, read once: they require no database; ``ConfigurationError``
    when one is wrong."""
    return _load(ClientSettings)


def describe_error(error: ValidationError) -> str:
    """One line naming each bad setting by its environment variable, without echoing values."""
    parts = []
    for item in error.errors():
        name = ENV_PREFIX + "_".join(str(p) for p in item["loc"]).upper()
        message = item["msg"]
        if item["type"] == "missing":
            message = "is required but not set"
        elif item["type"] == "value_error":
            message = message.removeprefix("Value error, ")  # pydantic's wrapper, not ours
        parts.append(f"{name} {message}")
    return "invalid configuration: " + "; ".join(parts)


def settings_or_exit() -> Settings:
    """``get_settings()``, or one clear line on stderr and exit status 2 when it is wrong: for
    the entry points that are not the CLI (worker, beat, Alembic), which has its own handler."""
    try:
        return get_settings()
    except ConfigurationError as error:
        _exit_with(str(error))


def _exit_with(message: str) -> NoReturn:
    sys.stderr.write(f"callstore: {message}\n")
    raise SystemExit(2)
