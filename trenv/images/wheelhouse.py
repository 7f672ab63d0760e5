"""The offline wheelhouse: every wheel of the lock, verified against its pinned sha256.

Wheels are downloaded on the host (the build containers have no usable route to the package
index) into ``$TRENV_HOME/cache/wheels`` and copied from there into the build context. Every
copy is hashed again on the way in, so a wheel altered in the cache after it was downloaded is
refused rather than built into an image; the build stage checks the hashes once more with
``pip install --require-hashes``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from trenv.hashing import file_sha256
from trenv.images.errors import WheelhouseError
from trenv.images.lockfile import LockEntry, read_lock
from trenv.images.progress import ProgressCallback, no_progress
from trenv.images.target import pip_target_args

STAGE_DOWNLOAD = "download wheels"
STAGE_VERIFY = "verify wheels"


def _cached_candidates(cache_dir: Path, entry: LockEntry) -> list[Path]:
    """Cached wheels that claim to be ``entry`` (by file name, else by name and version)."""
    if entry.filename is not None:
        path = cache_dir / entry.filename
        return [path] if path.is_file() else []
    found: list[Path] = []
    for path in cache_dir.glob("*.whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(name) == entry.name and str(version) == entry.version:
            found.append(path)
    return found


def _verified(path: Path, entry: LockEntry) -> Path:
    """``path`` if its sha256 is one the lock pins for ``entry``; otherwise refuse it."""
    actual = file_sha256(path)
    if actual not in entry.sha256:
        expected = ", ".join(sorted(entry.sha256))
        raise WheelhouseError(
            f"wheel {path} for {entry.pin} does not match the lock: sha256 is {actual}, "
            f"the lock pins {expected}. The file was altered or is not the locked wheel.",
            f"Delete {path} so it is downloaded again; if the lock itself is wrong, "
            "regenerate it with: python -m trenv.images.lock",
        )
    return path


def _download(
    entries: Sequence[LockEntry],
    cache_dir: Path,
    progress: ProgressCallback,
    already: int,
    total: int,
) -> None:
    """Download ``entries`` (no dependencies: the lock is complete) into ``cache_dir``.

    pip checks each download against the pinned hashes itself (``--require-hashes``). Files
    land in a temporary directory next to the cache and are moved in afterwards, so an
    interrupted download never leaves a partial wheel in the cache.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        staging = Path(tmp)
        req_file = staging / "requirements.txt"
        req_file.write_text(
            "".join(
                f"{e.pin} " + " ".join(f"--hash=sha256:{d}" for d in sorted(e.sha256)) + "\n"
                for e in entries
            ),
            encoding="utf-8",
        )
        dest = staging / "wheels"
        dest.mkdir()
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
            "--progress-bar", "off", "--quiet", "--dest", str(dest), "-r", str(req_file),
            *pip_target_args(),
        ]  # fmt: skip
        done = threading.Event()

        # pip reports nothing machine-readable while it downloads; counting the files that
        # have arrived is enough for a progress bar.
        def watch() -> None:
            while not done.wait(0.5):
                progress(STAGE_DOWNLOAD, already + len(list(dest.glob("*.whl"))), total)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        finally:
            done.set()
            watcher.join()
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise WheelhouseError(
                f"downloading {len(entries)} locked wheels failed:\n{tail}",
                "Check that the package index is reachable from this host; if a pinned "
                "version or hash is no longer available, regenerate the lock with: "
                "python -m trenv.images.lock",
            )
        for wheel in dest.glob("*.whl"):
            wheel.replace(cache_dir / wheel.name)


def prepare_wheelhouse(
    lock_path: Path,
    dest: Path,
    *,
    cache_dir: Path,
    progress: ProgressCallback = no_progress,
) -> list[Path]:
    """Fill ``dest`` with exactly the locked wheels, each verified; returns their paths.

    Missing wheels are downloaded into ``cache_dir`` first; a cached wheel whose hash does not
    match the lock raises :class:`WheelhouseError` (it is never silently replaced, since a
    changed file in the cache is something an operator must look at).
    """
    entries = read_lock(lock_path)
    total = len(entries)
    missing = [e for e in entries if not _cached_candidates(cache_dir, e)]
    if missing:
        progress(STAGE_DOWNLOAD, total - len(missing), total)
        _download(missing, cache_dir, progress, total - len(missing), total)
    progress(STAGE_DOWNLOAD, total, total)

    dest.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    for done, entry in enumerate(entries, start=1):
        candidates = _cached_candidates(cache_dir, entry)
        if not candidates:
            raise WheelhouseError(
                f"pip reported success but no wheel for {entry.pin} is in {cache_dir}.",
                "Regenerate the lock with: python -m trenv.images.lock",
            )
        # Several cached files may share a name and version (other platforms); use the one the
        # lock pins, and refuse if none of them is it.
        errors: list[WheelhouseError] = []
        source: Path | None = None
        for candidate in candidates:
            try:
                source = _verified(candidate, entry)
                break
            except WheelhouseError as exc:
                errors.append(exc)
        if source is None:
            raise errors[0]
        target = dest / source.name
        shutil.copyfile(source, target)
        # Hash the copy too: it is what the build reads, and the cache could change meanwhile.
        copied.append(_verified(target, entry))
        progress(STAGE_VERIFY, done, total)
    return copied
