"""What an image contains: its pinned packages, from the lock file it was built from.

An image carries the sha256 of its lock file in the label ``org.trenv.lock-sha256``. The
lock file itself is kept when the image is built (``$TRENV_HOME/images/locks/<sha256>.lock``),
so the list stays readable after the repository's lock moves on; the repository's current
lock serves when its digest matches. The label is read from the registry record, else from
the Docker engine (images recorded without labels).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from trenv.config import Settings
from trenv.hashing import file_sha256
from trenv.images.build import KINDS, LABEL_LOCK
from trenv.images.errors import LockError
from trenv.images.lockfile import read_lock
from trenv.images.paths import repo_root
from trenv.layout import image_locks_dir
from trenv.store.models import Image


@dataclass(frozen=True)
class Contents:
    lock_sha256: str | None
    source: str  # where the list came from, or why there is none
    packages: list[tuple[str, str]]  # (name, version), sorted by name


def locks_dir(settings: Settings) -> Path:
    return image_locks_dir(settings)


def keep_lock(settings: Settings, lock: Path) -> Path:
    """Keep a copy of the lock file an image was built from, named by its sha256."""
    folder = locks_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{file_sha256(lock)}.lock"
    if not target.exists():
        shutil.copyfile(lock, target)
    return target


def _engine_labels(digest: str) -> dict[str, str]:
    try:
        import docker

        client = docker.from_env(timeout=5)
        try:
            return dict(client.images.get(digest).labels or {})
        finally:
            client.close()
    except Exception:  # no engine, or the image was removed: the page says so
        return {}


def _candidates(settings: Settings, sha: str) -> list[Path]:
    kept = locks_dir(settings) / f"{sha}.lock"
    return [kept, *(repo_root() / "images" / kind / "requirements.lock" for kind in KINDS)]


def contents(settings: Settings, image: Image, *, ask_engine: bool = True) -> Contents:
    labels = image.labels or (_engine_labels(image.digest) if ask_engine else {})
    sha = labels.get(LABEL_LOCK)
    if not sha:
        return Contents(None, "the image carries no lock-file label", [])
    for path in _candidates(settings, sha):
        if path.is_file() and file_sha256(path) == sha:
            try:
                entries = read_lock(path)
            except LockError as error:
                return Contents(sha, f"the lock file {path} cannot be read: {error}", [])
            packages = sorted((e.name, e.version) for e in entries)
            return Contents(sha, str(path), packages)
    return Contents(sha, "the lock file of this build is not kept on this host", [])
