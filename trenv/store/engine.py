"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

SQLite write transactions start with ``BEGIN IMMEDIATE`` so that read-then-write sequences
(the audit chain, budget reservations) are serialised instead of failing with a stale
snapshot; PostgreSQL gets the same guarantee from explicit locks where it matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from trenv.config import Settings, get_settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


_engines: dict[str, Engine] = {}


def get_engine(settings: Settings | None = None) -> Engine:
    url = (settings or get_settings()).database_url
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(settings), expire_on_commit=False)


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[Session]:
    """A session whose work commits together at the end, or not at all."""
    settings = settings or get_settings()
    with session_factory(settings).begin() as session:
        session.info["settings"] = settings
        yield session
