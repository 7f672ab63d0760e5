"""Errors raised while preparing or building images; each names the problem and the fix."""

from __future__ import annotations

from trenv.errors import TrenvError


class ImageError(TrenvError):
    """An image could not be prepared or built."""

    status_code = 500


class DockerUnavailable(ImageError):
    """The Docker engine does not answer."""


class LockError(ImageError):
    """The lock file is missing, malformed or cannot be resolved."""


class WheelhouseError(ImageError):
    """A wheel is missing or does not match the hash pinned in the lock file."""
