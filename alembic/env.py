"""Alembic environment built from the models and the settings.

The target metadata is ``models.tables.metadata``. Monthly partitions and the ``archive`` schema
are managed by ``worker.maintenance.partitions`` and retention, not by autogenerate, so they are excluded
from comparison (``alembic check`` would otherwise report every partition as drift).
A caller may hand in an open connection (``config.attributes["connection"]``), as the tests
and ``callstore stack up`` do; otherwise the URL comes from ``CALLSTORE_DATABASE_URL``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic.autogenerate.api import AutogenContext
from pgvector.sqlalchemy import Vector
from sqlalchemy import Connection, create_engine, pool
from sqlmodel.sql.sqltypes import AutoString

from alembic import context
from models.tables import metadata
from worker.maintenance.partitions import parse_partition_name

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "schema":
        return name in (None, "public")
    return not (type_ == "table" and name is not None and parse_partition_name(name) is not None)


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render SQLModel's and pgvector's types as plain imports in generated migrations."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, Vector):
        autogen_context.imports.add("from pgvector.sqlalchemy import Vector")
        return f"Vector({obj.dim})"
    return False


def _configure(connection: Connection) -> None:
    connection.dialect.ischema_names["vector"] = Vector  # type: ignore[attr-defined]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        render_item=render_item,
        compare_type=True,
        compare_server_default=False,
        # One transaction per revision: a revision may step outside it (CREATE INDEX
        # CONCURRENTLY), and what ran before it stays committed.
        transaction_per_migration=True,
    )


def run_migrations_offline() -> None:
    from worker.settings import settings_or_exit

    context.configure(
        url=settings_or_exit().sqlalchemy_url,
        target_metadata=metadata,
        literal_binds=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from worker.settings import settings_or_exit

    engine = create_engine(settings_or_exit().sqlalchemy_url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
