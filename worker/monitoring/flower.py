"""Flower, configured from the ``CALLSTORE_*`` settings like every other process.

Flower 2 reads its options from ``FLOWER_*`` variables, from a ``flowerconfig.py`` in the
working directory and from its command line, never from the Celery app. ``worker.celery_app``
calls ``configure_flower`` when it is loaded by ``celery -A worker.celery_app flower``: the
options below become Flower's defaults before Flower reads its own sources, so the plain
command is protected from any directory, and an explicit Flower flag (``--port``) still applies.

Flower without authentication shows every task and can revoke them; it refuses to start unless
users are configured or anonymous access is asked for explicitly. Users are of two kinds:
operators (``CALLSTORE_FLOWER_BASIC_AUTH``) and viewers (``CALLSTORE_FLOWER_VIEWERS``), whom
``worker.monitoring.flower_roles`` lets read and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from worker.monitoring.flower_roles import ViewerGuard, install
from worker.settings import Settings

#: Columns of Flower's task list: ``result`` shows a finalize outcome with its call id, or the
#: counts of a long task while it runs (the arguments, ``<call ID revision N>``, are on each
#: task's page).
TASK_COLUMNS = "name,state,result,received,runtime,worker,uuid"
#: Flower writes its state to ``CALLSTORE_FLOWER_DB`` this often, not only at a clean stop.
STATE_SAVE_INTERVAL_MS = 60_000
OPERATORS_VARIABLE = "CALLSTORE_FLOWER_BASIC_AUTH"
VIEWERS_VARIABLE = "CALLSTORE_FLOWER_VIEWERS"


class FlowerConfigError(ValueError):
    """Flower's settings are missing or malformed; the message names the variable."""


def parse_users(value: str, variable: str) -> list[str]:
    """``user:password`` pairs separated by commas, as Flower's ``--basic-auth`` takes them;
    a refusal names ``variable`` and the entry's position, never its text."""
    pairs = [pair.strip() for pair in value.split(",") if pair.strip()]
    if not pairs:
        raise FlowerConfigError(f"{variable} is empty")
    for number, pair in enumerate(pairs, 1):
        user, colon, password = pair.partition(":")
        if not (colon and user and password):
            raise FlowerConfigError(f"{variable} entry {number} is not user:password")
    return pairs


def parse_basic_auth(value: str) -> list[str]:
    """The operators of ``CALLSTORE_FLOWER_BASIC_AUTH``."""
    return parse_users(value, OPERATORS_VARIABLE)


@dataclass(frozen=True, slots=True)
class FlowerUsers:
    """``user:password`` pairs of each kind."""

    operators: tuple[str, ...]
    viewers: tuple[str, ...]


def _pairs(value: SecretStr | None, variable: str) -> tuple[str, ...]:
    text = value.get_secret_value() if value is not None else ""
    return tuple(parse_users(text, variable)) if text.strip() else ()


def flower_users(settings: Settings) -> FlowerUsers:
    """Both kinds of user; a name in both lists is refused (which kind would it be?)."""
    users = FlowerUsers(
        _pairs(settings.flower_basic_auth, OPERATORS_VARIABLE),
        _pairs(settings.flower_viewers, VIEWERS_VARIABLE),
    )
    operator_names = {pair.partition(":")[0] for pair in users.operators}
    for number, pair in enumerate(users.viewers, 1):
        if pair.partition(":")[0] in operator_names:
            raise FlowerConfigError(
                f"{VIEWERS_VARIABLE} entry {number} names a user of {OPERATORS_VARIABLE}:"
                " a user is either an operator or a viewer, not both"
            )
    return users


def flower_options(settings: Settings) -> dict[str, Any]:
    """Flower's options (names as Flower defines them) for ``settings``."""
    users = flower_users(settings)
    if not (users.operators or users.viewers) and not settings.flower_allow_anonymous:
        raise FlowerConfigError(
            f"Flower refuses to start without users: set {OPERATORS_VARIABLE}=user:password"
            f" (and {VIEWERS_VARIABLE} for read-only users), or"
            " CALLSTORE_FLOWER_ALLOW_ANONYMOUS=true behind an authenticating proxy"
        )
    return {
        # Flower lets in every user of either kind; flower_roles then refuses viewers' writes.
        "basic_auth": [*users.operators, *users.viewers],
        "url_prefix": settings.flower_url_prefix.strip("/"),
        "persistent": True,
        "db": str(settings.flower_db),
        "state_save_interval": STATE_SAVE_INTERVAL_MS,
        "tasks_columns": TASK_COLUMNS,
    }


def configure_flower(settings: Settings) -> None:
    """Make ``settings`` Flower's defaults and hold viewers to reading; raises
    ``FlowerConfigError`` when it must not start."""
    values = flower_options(settings)
    settings.flower_db.parent.mkdir(parents=True, exist_ok=True)
    import flower.options  # noqa: F401  (defines Flower's options in tornado's registry)
    from tornado.options import options

    for name, value in values.items():
        setattr(options, name, value)
    install(ViewerGuard(flower_users(settings).viewers))
