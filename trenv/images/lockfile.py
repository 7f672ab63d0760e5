"""Reading the image lock file: one pinned wheel per line, each with its sha256.

The format is pip's hash-checking requirements format, so the same file is given to
``pip install --require-hashes`` inside the build. A comment line naming the wheel file
precedes each requirement, for reviewers; the parser ignores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from trenv.images.errors import LockError

_REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:(?P<digest>[0-9a-f]{64})")
# The reviewer's comment above each pin; also tells the wheelhouse which cached file is meant.
_FILE_COMMENT = re.compile(r"^#\s*file:\s*(?P<file>\S+\.whl)\s*$")


@dataclass(frozen=True)
class LockEntry:
    """One pinned distribution: canonical name, exact version, accepted sha256 digests."""

    name: str
    version: str
    sha256: frozenset[str]
    filename: str | None = None

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def _logical_lines(text: str) -> list[tuple[str, str | None]]:
    """Join backslash continuations and drop comments, as pip does.

    Each requirement comes with the wheel file named by the ``# file:`` comment above it.
    """
    lines: list[tuple[str, str | None]] = []
    pending = ""
    filename: str | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            comment = _FILE_COMMENT.match(stripped)
            if comment is not None and not pending:
                filename = comment.group("file")
            continue
        line = raw.split(" #", 1)[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            lines.append((line, filename))
            filename = None
    if pending.strip():
        lines.append((pending.strip(), filename))
    return lines


def read_lock(path: Path) -> list[LockEntry]:
    """Parse ``path``; every requirement must be an exact pin with at least one sha256."""
    if not path.is_file():
        raise LockError(
            f"lock file {path} does not exist.",
            "Generate it with: python -m trenv.images.lock",
        )
    entries: list[LockEntry] = []
    seen: set[str] = set()
    for line, filename in _logical_lines(path.read_text(encoding="utf-8")):
        match = _REQUIREMENT.match(line)
        if match is None:
            raise LockError(
                f"{path}: {line!r} is not an exact 'name==version' pin.",
                "Regenerate the lock with: python -m trenv.images.lock",
            )
        digests = frozenset(m.group("digest") for m in _HASH.finditer(line))
        if not digests:
            raise LockError(
                f"{path}: {match.group('name')} has no --hash=sha256 pin, "
                "so it cannot be verified.",
                "Regenerate the lock with: python -m trenv.images.lock",
            )
        name = canonicalize_name(match.group("name"))
        if name in seen:
            raise LockError(f"{path}: {name} is pinned twice.", "Keep one line per package.")
        seen.add(name)
        entries.append(
            LockEntry(name=name, version=match.group("version"), sha256=digests, filename=filename)
        )
    if not entries:
        raise LockError(
            f"lock file {path} pins nothing.", "Regenerate it: python -m trenv.images.lock"
        )
    return entries
