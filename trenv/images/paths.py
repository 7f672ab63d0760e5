"""Where image sources and caches live."""

from __future__ import annotations

from pathlib import Path

from trenv import layout
from trenv.config import Settings, get_settings
from trenv.images.errors import ImageError


def repo_root() -> Path:
    """The trenv source tree holding ``images/`` and ``pyproject.toml``.

    Images are built from a checkout (the Dockerfiles and the lock are not in the wheel), so
    this is the directory above the imported ``trenv`` package.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "images").is_dir() or not (root / "pyproject.toml").is_file():
        raise ImageError(
            f"{root} is not a trenv source tree (no images/ or pyproject.toml).",
            "Build images from a trenv checkout: pip install -e . inside it.",
        )
    return root


def cache_dir(settings: Settings | None = None) -> Path:
    """``$TRENV_HOME/cache``: downloads worth keeping between builds."""
    settings = settings or get_settings()
    return layout.cache_dir(settings)


def wheel_cache_dir(settings: Settings | None = None) -> Path:
    return cache_dir(settings) / "wheels"


def rootfs_cache_dir(settings: Settings | None = None) -> Path:
    return cache_dir(settings) / "rootfs"
