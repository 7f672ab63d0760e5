"""Persistence: typed models, engines and sessions, Alembic migrations."""

from trenv.store.engine import dispose_engines, get_engine, session_factory, transaction
from trenv.store.migrate import current_revision, upgrade

__all__ = [
    "current_revision",
    "dispose_engines",
    "get_engine",
    "session_factory",
    "transaction",
    "upgrade",
]
