"""Archiving a closed project's workspaces to the retention area, then removing them.

A workspace holds the researchers' code and intermediate results, derived from confidential
data: it may not stay where a container could mount it again, but it is kept (owner-only)
for the retention period so that published results can be reproduced or investigated.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from trenv.config import Settings
from trenv.hashing import file_sha256
from trenv.layout import project_workspaces_dir, retention_project_dir


@dataclass(frozen=True)
class Archive:
    path: Path
    sha256: str
    size: int
    users: list[str]  # the workspaces it holds
    files: int


def archive_workspaces(
    settings: Settings, slug: str, now: dt.datetime | None = None
) -> Archive | None:
    """Write ``<retention>/<slug>/<UTC time>.tar.gz`` with every workspace of the project,
    then remove the workspaces. None when the project has no workspace left."""
    root = project_workspaces_dir(settings, slug)
    if not root.is_dir() or not any(root.iterdir()):
        if root.is_dir():
            root.rmdir()
        return None
    folder = retention_project_dir(settings, slug)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{stamp}.tar.gz"
    partial = folder / f".{stamp}.tar.gz.partial"
    users = sorted(p.name for p in root.iterdir())
    files = 0
    # Written under a temporary name and renamed: a crash never leaves a truncated archive
    # that looks complete, and the workspaces are removed only after the rename.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            # Symlinks are stored as links (never followed): a link to the vault stays a link.
            tar.add(path, arcname=str(path.relative_to(root.parent)), recursive=False)
            files += path.is_file() and not path.is_symlink()
    os.replace(partial, target)
    _remove(root)
    return Archive(target, file_sha256(target), target.stat().st_size, users, files)


def _remove(root: Path) -> None:
    # A researcher may have left read-only directories; give the owner write access first.
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IRWXU)
    shutil.rmtree(root)


def archives_of(settings: Settings, slug: str) -> list[Path]:
    folder = retention_project_dir(settings, slug)
    return sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []
