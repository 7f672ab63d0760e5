"""Migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from trenv.config import Settings
from trenv.store import current_revision, get_engine, upgrade
from trenv.store.migrate import head_revision
from trenv.store.models import Base


def test_database_is_at_head(settings: Settings) -> None:
    assert current_revision(settings) == head_revision()


def test_models_and_migrations_agree(settings: Settings) -> None:
    with get_engine(settings).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(settings: Settings) -> None:
    upgrade(settings)
    tables = set(inspect(get_engine(settings)).get_table_names())
    assert {"users", "projects", "grants", "datasets", "audit_events", "images"} <= tables
