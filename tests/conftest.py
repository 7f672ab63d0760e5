"""Fixtures shared by the whole suite: settings on a temp TRENV_HOME, and databases.

Database tests take the ``db_url`` fixture and run twice: on SQLite and on a real
PostgreSQL cluster that this session starts (tests/support/postgres.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tests.support.browser import browser  # noqa: F401  (one Chromium per browser test module)
from tests.support.postgres import running_cluster
from trenv.config import Settings, get_settings
from trenv.store import dispose_engines, transaction, upgrade


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    with running_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'trenv.db'}"
        dispose_engines()
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for a fresh installation, also exported to the environment for the CLI."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRENV_HOME", str(home))
    monkeypatch.setenv("TRENV_DATABASE_URL", db_url)
    monkeypatch.delenv("TRENV_CONFIG", raising=False)
    monkeypatch.delenv("TRENV_ACTOR", raising=False)
    get_settings.cache_clear()
    current = get_settings()
    current.ensure_dirs()
    upgrade(current)
    yield current
    get_settings.cache_clear()


@pytest.fixture
def tx(settings: Settings):  # type: ignore[no-untyped-def]
    """Open a committed transaction: ``with tx() as session: ...``."""

    def open_transaction():  # type: ignore[no-untyped-def]
        return transaction(settings)

    return open_transaction


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    """One transaction for a whole test, rolled back at the end."""
    from trenv.store import session_factory

    with session_factory(settings)() as sess:
        sess.info["settings"] = settings
        yield sess
        sess.rollback()
