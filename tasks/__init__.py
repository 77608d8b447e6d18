"""Celery tasks: thin shells that call plain functions in ``worker/``.

A task reads its settings, binds log context, calls one service function and maps errors to
retry or dead letter. Business logic never lives here, so tests call the services directly.
"""

#: Modules the Celery app loads; every task module of the system is listed here.
TASK_MODULES: tuple[str, ...] = (
    "tasks.calls",
    "tasks.maintenance",
    "tasks.migration",
    "tasks.consistency",
    "tasks.canary",
    "tasks.dead_letters",
)
