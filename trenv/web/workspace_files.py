"""The files a researcher could ask to export, listed from their workspace for the form.

Only a convenience for picking paths: the intake (:mod:`trenv.airlock.intake`) reads and
checks the chosen file again, safely, when it is added. Listing still follows no symbolic
link (a link to ``/data`` must not even show up as a choice), skips hidden folders (caches,
checkpoints, ``.git``) and the output records that travel with their file, and stops at a
small depth and count so that a workspace full of scratch files cannot slow the page down.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from trenv.airlock.formats import ALLOWED_TYPES
from trenv.airlock.intake import is_sidecar

MAX_DEPTH = 4
MAX_LISTED = 500


@dataclass(frozen=True)
class WorkspaceFile:
    path: str  # relative POSIX path, as the airlock API takes it
    size: int
    kind: str


def list_workspace_files(
    root: Path, *, max_depth: int = MAX_DEPTH, max_listed: int = MAX_LISTED
) -> list[WorkspaceFile]:
    """Regular files of an allowed type under ``root``, sorted by path."""
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            return []  # missing, or itself a link: nothing to offer
    except FileNotFoundError:
        return []
    found: list[WorkspaceFile] = []
    _walk(root, "", 1, max_depth, max_listed, found)
    return sorted(found, key=lambda f: f.path)


def _walk(
    folder: Path, prefix: str, depth: int, max_depth: int, max_listed: int, out: list[WorkspaceFile]
) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return  # unreadable folder: not offered
    for entry in entries:
        if len(out) >= max_listed:
            return
        if entry.name.startswith("."):
            continue
        rel = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            if depth < max_depth:
                _walk(Path(entry.path), rel + "/", depth + 1, max_depth, max_listed, out)
            continue
        if not entry.is_file(follow_symlinks=False) or is_sidecar(rel):
            continue
        ftype = ALLOWED_TYPES.get(os.path.splitext(entry.name)[1].lower())
        if ftype is None:
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
        out.append(WorkspaceFile(path=rel, size=size, kind=ftype.kind))
