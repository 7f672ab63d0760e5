"""Run Alembic migrations programmatically (``trenv db upgrade``, ``trenv init``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from trenv.config import Settings, get_settings
from trenv.store import secrets
from trenv.store.engine import get_engine, transaction

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def alembic_config(settings: Settings | None = None) -> Config:
    settings = settings or get_settings()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in URLs (encoded passwords) must survive configparser interpolation.
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    settings = settings or get_settings()
    if settings.database_url.startswith("sqlite:///"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    config = alembic_config(settings)
    with get_engine(settings).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    # After the schema: secrets stored before encryption at rest are encrypted now, and the
    # database's files get owner-only modes (an upgrade repairs an older installation).
    secrets.ensure_key_file(settings)
    with transaction(settings) as session:
        secrets.encrypt_plain_secrets(session, settings)
    restrict_database_files(settings)


def restrict_database_files(settings: Settings) -> None:
    """SQLite's database and its -wal/-shm/-journal files: mode 0600 (SQLite creates the
    side files with the database file's mode, so fixing it once holds)."""
    if not settings.database_url.startswith("sqlite:///"):
        return
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    for path in (database, *(database.with_name(database.name + s) for s in SQLITE_SIDE_FILES)):
        if path.exists():
            path.chmod(0o600)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(settings: Settings | None = None) -> str | None:
    with get_engine(settings).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
