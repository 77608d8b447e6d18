"""Flower, configured from the ``CALLSTORE_*`` settings like every other process.

Flower 2 reads its options from ``FLOWER_*`` variables, from a ``flowerconfig.py`` in the
working directory and from its command line, never from the Celery app. ``worker.celery_app``
calls ``configure_flower`` when it is loaded by ``celery -A worker.celery_app flower``: the
options below become Flower's defaults before Flower reads its own sources, so the plain
command is protected from any directory, and an explicit Flower flag (``--port``) still applies.

Flower without authentication shows every task and can revoke them; it refuses to start unless
users are configured or anonymous access is asked for explicitly.
"""

from __future__ import annotations

from typing import Any

from worker.settings import Settings

#: Columns of Flower's task list: ``result`` shows a finalize outcome with its call id, or the
#: counts of a long task while it runs (the arguments, ``<call ID revision N>``, are on each
#: task's page).
TASK_COLUMNS = "name,state,result,received,runtime,worker,uuid"
#: Flower writes its state to ``CALLSTORE_FLOWER_DB`` this often, not only at a clean stop.
STATE_SAVE_INTERVAL_MS = 60_000


class FlowerConfigError(ValueError):
    """Flower's settings are missing or malformed; the message names the variable."""


def parse_basic_auth(value: str) -> list[str]:
    """``user:password`` pairs separated by commas, as Flower's ``--basic-auth`` takes them."""
    pairs = [pair.strip() for pair in value.split(",") if pair.strip()]
    if not pairs:
        raise FlowerConfigError("CALLSTORE_FLOWER_BASIC_AUTH is empty")
    for number, pair in enumerate(pairs, 1):
        user, colon, password = pair.partition(":")
        if not (colon and user and password):
            raise FlowerConfigError(
                f"CALLSTORE_FLOWER_BASIC_AUTH entry {number} is not user:password"
            )
    return pairs


def flower_options(settings: Settings) -> dict[str, Any]:
    """Flower's options (names as Flower defines them) for ``settings``."""
    if settings.flower_basic_auth is not None and settings.flower_basic_auth.get_secret_value():
        users = parse_basic_auth(settings.flower_basic_auth.get_secret_value())
    elif settings.flower_allow_anonymous:
        users = []
    else:
        raise FlowerConfigError(
            "Flower refuses to start without users: set CALLSTORE_FLOWER_BASIC_AUTH=user:password"
            " (or CALLSTORE_FLOWER_ALLOW_ANONYMOUS=true behind an authenticating proxy)"
        )
    return {
        "basic_auth": users,
        "url_prefix": settings.flower_url_prefix.strip("/"),
        "persistent": True,
        "db": str(settings.flower_db),
        "state_save_interval": STATE_SAVE_INTERVAL_MS,
        "tasks_columns": TASK_COLUMNS,
    }


def configure_flower(settings: Settings) -> None:
    """Make ``settings`` Flower's defaults; raises ``FlowerConfigError`` when it must not start."""
    values = flower_options(settings)
    settings.flower_db.parent.mkdir(parents=True, exist_ok=True)
    import flower.options  # noqa: F401  (defines Flower's options in tornado's registry)
    from tornado.options import options

    for name, value in values.items():
        setattr(options, name, value)
