"""Container images: the Debian base, the offline wheelhouse and the notebook image build.

The CLI calls :func:`build_image`; everything else here is the machinery behind it.
"""

from __future__ import annotations

from trenv.images.build import BuiltImage, build_image
from trenv.images.errors import DockerUnavailable, ImageError, LockError, WheelhouseError

__all__ = [
    "BuiltImage",
    "DockerUnavailable",
    "ImageError",
    "LockError",
    "WheelhouseError",
    "build_image",
]
