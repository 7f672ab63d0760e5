"""Where an installation keeps things on disk: the one home of every path under TRENV_HOME.

Every module that needs a directory asks here, so moving a folder is a one-line change and
no package imports another only to learn a path (the airlock and the web pages used to import
the hub's launcher for ``workspace_dir``). The roots themselves (``vault_dir``,
``projects_dir`` …) are settings an operator may point elsewhere; this module derives the
rest from them. Functions only compute paths; none creates anything.

::

    TRENV_HOME/
      trenv.db                        the registry (SQLite default)
      credentials.json                demo logins (owner-only)
      audit-anchor.json               newest audit hash, outside the database
      keys/                           signing keys, db-secrets.key
      hub/                            JupyterHub's own state (cookie secret, proxy token, DB)
      web/cookie_secret               key of the trenv pages' session cookies
      images/locks/                   image lock files recorded at build
      cache/                          image build cache and wheelhouse
      demo-sources/<n>-<seed>/        the demo's synthetic supplier files
      vault/keys/                     pseudonym master key and per-project salts
      vault/datasets/                 ingested datasets, by name and version
      vault/linkage/<run>/            linkage runs
      projects/<slug>/data            symlink to the current publication (mounted at /data)
      projects/<slug>/unpublished     empty read-only directory mounted while nothing is published
      projects/<slug>/.publications/  every publication of the project's view
      workspaces/<slug>/<user>/       a researcher's workspace on a project (mounted read-write)
      airlock/                        content-addressed store of frozen files and bundles
      retention/<slug>/               archived workspaces of closed projects
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only attributes are read: importing config here would slow `airlock verify`
    from trenv.config import Settings

DATA_LINK = "data"  # the stable name the spawner mounts; publish swaps what it points to
UNPUBLISHED = "unpublished"
PUBLICATIONS = ".publications"


def _root(path: Path | None, name: str) -> Path:
    # Settings derive every root in a validator; None only if a caller built Settings oddly.
    if path is None:
        raise ValueError(f"settings.{name} is not set; build Settings through get_settings().")
    return path


# ------------------------------------------------------------------ the vault


def vault_keys_dir(settings: Settings) -> Path:
    return _root(settings.vault_dir, "vault_dir") / "keys"


def datasets_dir(settings: Settings) -> Path:
    return _root(settings.vault_dir, "vault_dir") / "datasets"


def linkage_run_dir(settings: Settings, run: str) -> Path:
    return _root(settings.vault_dir, "vault_dir") / "linkage" / run


# ------------------------------------------------------------------ projects' views


def project_dir(settings: Settings, slug: str) -> Path:
    return _root(settings.projects_dir, "projects_dir") / slug


def project_data_dir(settings: Settings, slug: str) -> Path:
    """The vault publishes the project's view behind this symlink (trenv/vault/publish.py)."""
    return project_dir(settings, slug) / DATA_LINK


def unpublished_dir(settings: Settings, slug: str) -> Path:
    """An empty read-only directory mounted while nothing is published for the project."""
    return project_dir(settings, slug) / UNPUBLISHED


# ------------------------------------------------------------------ workspaces


def project_workspaces_dir(settings: Settings, slug: str) -> Path:
    """Every member's workspace on one project."""
    return _root(settings.workspaces_dir, "workspaces_dir") / slug


def workspace_dir(settings: Settings, slug: str, username: str) -> Path:
    return project_workspaces_dir(settings, slug) / username


def retention_project_dir(settings: Settings, slug: str) -> Path:
    """Archives of a closed project's workspaces (<timestamp>.tar.gz, owner-only)."""
    return _root(settings.retention_dir, "retention_dir") / slug


# ------------------------------------------------------------------ the airlock


def airlock_store_dir(settings: Settings) -> Path:
    return _root(settings.airlock_dir, "airlock_dir")


# ------------------------------------------------------------------ installation state


def keys_dir(settings: Settings) -> Path:
    """Signing keys and the database-secrets key, owner-only."""
    return settings.home / "keys"


def db_secrets_key_file(settings: Settings) -> Path:
    return keys_dir(settings) / "db-secrets.key"


def hub_state_dir(settings: Settings) -> Path:
    return settings.home / "hub"


def web_cookie_secret_file(settings: Settings) -> Path:
    """Key of the trenv pages' session cookies (deleting it logs everyone out)."""
    return settings.home / "web" / "cookie_secret"


def credentials_file(settings: Settings) -> Path:
    return settings.home / "credentials.json"


def image_locks_dir(settings: Settings) -> Path:
    return settings.home / "images" / "locks"


def cache_dir(settings: Settings) -> Path:
    return (settings.home / "cache").absolute()


def demo_sources_dir(settings: Settings, persons: int, seed: int) -> Path:
    return settings.home / "demo-sources" / f"{persons}-{seed}"
