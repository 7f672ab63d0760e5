"""The content-addressed store of frozen request files.

A file is stored under its sha256, so what the checkers reviewed and what is released are the
same bytes by construction: the release reads the object by the hash recorded at submission
and :meth:`ContentStore.get` re-hashes it, so an object changed on disk afterwards is
detected instead of released. Objects are written to a temporary file, fsynced and renamed
into place (a crash never leaves a half-written object under a valid name) and made
read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

from trenv.errors import NotFound, TrenvError

_SHA256 = re.compile(r"[0-9a-f]{64}")
OBJECT_MODE = 0o440


class ObjectTampered(TrenvError):
    """A stored object's bytes no longer match its name: it was changed after storing."""

    status_code = 500


def check_sha256(sha256: str) -> str:
    """``sha256`` if it is 64 lowercase hex digits, else ``ValueError`` (never a path)."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest")
    return sha256


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / "objects" / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        try:
            st = os.stat(self.path(sha256), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode)

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its sha256. Storing the same bytes again is a no-op
        (and repairs an object whose bytes were damaged)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if self.exists(digest) and self._intact(target, digest):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, OBJECT_MODE)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)
        return digest

    def get(self, sha256: str) -> bytes:
        """The object's bytes, after checking that they still hash to ``sha256``."""
        target = self.path(sha256)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"stored file {sha256} does not exist") from None
        except OSError as exc:
            raise ObjectTampered(f"stored file {sha256} cannot be read safely: {exc}") from None
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ObjectTampered(
                f"stored file {sha256} was changed after it was stored; it must not be released",
                "restore the store from a backup and investigate",
            )
        return data

    @staticmethod
    def _intact(target: Path, sha256: str) -> bool:
        digest = hashlib.sha256()
        try:
            with open(target, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return False
        return digest.hexdigest() == sha256


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
