"""Assembling a build context: Dockerfile, lock, verified wheelhouse and trenv's own wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from trenv.images.errors import ImageError
from trenv.images.progress import ProgressCallback, no_progress
from trenv.images.wheelhouse import prepare_wheelhouse

STAGE_TRENV_WHEEL = "build trenv wheel"
# A fixed timestamp in the wheel's zip entries: the same sources give the same bytes, so
# Docker's layer cache recognises an unchanged trenv and skips reinstalling it.
_SOURCE_DATE_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip file can record
_SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "MANIFEST.in")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def build_trenv_wheel(source_dir: Path, dest: Path) -> Path:
    """``pip wheel --no-deps`` of the trenv package in ``source_dir``; returns the wheel.

    The sources are copied to a temporary directory first, so that the build's scratch files
    (build/, *.egg-info) never appear in a working tree other people are editing.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trenv-src-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in _SOURCE_FILES:
            if (source_dir / name).is_file():
                shutil.copy2(source_dir / name, src / name)
        shutil.copytree(source_dir / "trenv", src / "trenv", ignore=_IGNORE)
        env = {**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH}
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dest)]
        result = subprocess.run(
            [*cmd, str(src)], capture_output=True, text=True, env=env, check=False
        )
    wheels = sorted(dest.glob("trenv-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise ImageError(
            f"building the trenv wheel from {source_dir} failed:\n{tail}",
            "Check that `pip wheel --no-deps .` works in the repository.",
        )
    return wheels[0]


def assemble_context(
    image_dir: Path,
    dest: Path,
    *,
    source_dir: Path,
    wheel_cache: Path,
    progress: ProgressCallback = no_progress,
) -> tuple[Path, list[Path], Path]:
    """Fill ``dest`` with ``image_dir``'s files, the verified wheelhouse and the trenv wheel.

    Returns (lock file, wheels, trenv wheel) as they are in ``dest``.
    """
    lock = image_dir / "requirements.lock"
    dest.mkdir(parents=True, exist_ok=True)
    for item in image_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    wheels = prepare_wheelhouse(lock, dest / "wheels", cache_dir=wheel_cache, progress=progress)
    progress(STAGE_TRENV_WHEEL, 0, 1)
    trenv_wheel = build_trenv_wheel(source_dir, dest / "trenv-wheel")
    progress(STAGE_TRENV_WHEEL, 1, 1)
    return dest / lock.name, wheels, trenv_wheel
