"""Applying and checking the Alembic migrations from Python (stack, tests, CLI)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(*, premake_months: int | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if premake_months is not None:
        config.attributes["partition_premake_months"] = premake_months
    return config


def _run(sqlalchemy_url: str, premake_months: int | None, action: str, target: str) -> None:
    engine = create_engine(sqlalchemy_url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            config = alembic_config(premake_months=premake_months)
            config.attributes["connection"] = connection
            getattr(command, action)(config, target)
    finally:
        engine.dispose()


def upgrade(
    sqlalchemy_url: str, *, premake_months: int | None = None, target: str = "head"
) -> None:
    """``alembic upgrade`` on the database at ``sqlalchemy_url``."""
    _run(sqlalchemy_url, premake_months, "upgrade", target)


def downgrade(sqlalchemy_url: str, *, target: str = "base") -> None:
    """``alembic downgrade`` on the database at ``sqlalchemy_url``."""
    _run(sqlalchemy_url, None, "downgrade", target)


def heads() -> list[str]:
    """The head revisions of the migration graph (exactly one in a healthy tree)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())
