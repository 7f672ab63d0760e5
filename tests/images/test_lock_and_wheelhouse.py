"""The lock file and the hash-verified wheelhouse, on the real lock and real wheels."""

from __future__ import annotations

import importlib.metadata
import shutil
import tomllib
from pathlib import Path

import docker
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from trenv.config import Settings
from trenv.hashing import file_sha256
from trenv.images.base import BASE_IMAGE
from trenv.images.docker_build import run_build
from trenv.images.errors import ImageError, LockError, WheelhouseError
from trenv.images.lock import check_lock_matches_project
from trenv.images.lockfile import LockEntry, read_lock
from trenv.images.paths import wheel_cache_dir
from trenv.images.wheelhouse import prepare_wheelhouse

REQUIRED = {
    "jupyterlab", "jupyterhub", "pandas", "scikit-learn", "matplotlib", "statsmodels", "opendp",
    "polars", "pyarrow", "duckdb", "requests",
}  # fmt: skip


@pytest.fixture(scope="module")
def lock_path(repo: Path) -> Path:
    return repo / "images" / "notebook" / "requirements.lock"


@pytest.fixture(scope="module")
def entries(lock_path: Path) -> list[LockEntry]:
    return read_lock(lock_path)


def test_lock_pins_every_wheel_with_a_hash(entries: list[LockEntry]) -> None:
    assert len(entries) > 50
    for entry in entries:
        assert entry.sha256, entry
        assert entry.filename and entry.filename.endswith(".whl"), entry
        assert all(len(d) == 64 for d in entry.sha256)


def test_lock_covers_the_toolset_and_trenv_lab(entries: list[LockEntry], repo: Path) -> None:
    names = {e.name for e in entries}
    assert names >= REQUIRED, sorted(REQUIRED - names)
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["lab"]]
    versions = {e.name: e.version for e in entries}
    for spec in map(Requirement, declared):
        name = canonicalize_name(spec.name)
        assert name in versions, f"trenv[lab] needs {spec}, the lock lacks it"
        assert spec.specifier.contains(versions[name]), f"{spec} vs locked {versions[name]}"


def test_build_refuses_a_lock_that_pyproject_outgrew(
    entries: list[LockEntry], repo: Path, tmp_path: Path
) -> None:
    check_lock_matches_project(entries, repo / "pyproject.toml")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "trenv"\n'
        'dependencies = ["pandas>=99", "tomli; python_version < \'3.11\'"]\n'
        '[project.optional-dependencies]\nlab = ["not-a-locked-package"]\n'
    )
    with pytest.raises(LockError) as raised:
        check_lock_matches_project(entries, pyproject)
    message = str(raised.value)
    assert "pandas>=99 (locked: " in message
    assert "not-a-locked-package (locked: absent)" in message
    # A dependency whose marker excludes the image's Python 3.11 is not required.
    assert "tomli" not in message
    assert "python -m trenv.images.lock" in message


def test_lock_jupyterhub_matches_the_hub(entries: list[LockEntry]) -> None:
    hub = importlib.metadata.version("jupyterhub").split(".")[:2]
    locked = next(e.version for e in entries if e.name == "jupyterhub").split(".")[:2]
    assert locked == hub, "regenerate the lock: python -m trenv.images.lock"


def test_lock_wheels_are_for_the_images_python(entries: list[LockEntry]) -> None:
    for entry in entries:
        assert entry.filename is not None
        tags = entry.filename[:-4].split("-")[-3:]
        assert (
            tags[0] in {"py3", "py2.py3", "cp311", "cp310", "cp39", "cp38"} or tags[1] == "abi3"
        ), entry
        assert tags[2] == "any" or "x86_64" in tags[2], entry


def test_lock_parser_refuses_unhashed_and_unpinned_lines(tmp_path: Path) -> None:
    unhashed = tmp_path / "unhashed.lock"
    unhashed.write_text("six==1.16.0\n")
    with pytest.raises(LockError, match="no --hash=sha256"):
        read_lock(unhashed)
    unpinned = tmp_path / "unpinned.lock"
    unpinned.write_text("six>=1 --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(LockError, match="not an exact"):
        read_lock(unpinned)
    with pytest.raises(LockError, match="does not exist"):
        read_lock(tmp_path / "missing.lock")


def _one_entry_lock(
    entries: list[LockEntry], cache: Path, dest_lock: Path
) -> tuple[LockEntry, Path]:
    """A lock holding only the smallest locked wheel, copied into ``dest_lock``'s directory."""
    sized = [
        (e, cache / e.filename) for e in entries if e.filename and (cache / e.filename).is_file()
    ]
    assert sized, f"the wheel cache {cache} is empty; the session build should have filled it"
    entry, wheel = min(sized, key=lambda pair: pair[1].stat().st_size)
    digest = sorted(entry.sha256)[0]
    dest_lock.write_text(f"# file: {entry.filename}\n{entry.pin} --hash=sha256:{digest}\n")
    return entry, wheel


def test_wheelhouse_copies_verified_wheels(
    notebook_image, image_settings: Settings, entries: list[LockEntry], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    entry, wheel = _one_entry_lock(entries, wheel_cache_dir(image_settings), tmp_path / "one.lock")
    shutil.copy2(wheel, cache / wheel.name)
    out = prepare_wheelhouse(tmp_path / "one.lock", tmp_path / "house", cache_dir=cache)
    assert [p.name for p in out] == [wheel.name]
    assert file_sha256(out[0]) in entry.sha256


def test_missing_wheel_is_downloaded_and_verified(entries: list[LockEntry], tmp_path: Path) -> None:
    """An empty cache is filled from the package index, for the image's Python, hash-checked."""
    pure = [e for e in entries if e.filename and e.filename.endswith("-none-any.whl")]
    # A pure-Python wheel: small, and proves the target platform arguments accept "any".
    entry = pure[0]
    assert entry.filename is not None
    lock = tmp_path / "one.lock"
    lock.write_text(
        f"# file: {entry.filename}\n{entry.pin} --hash=sha256:{sorted(entry.sha256)[0]}\n"
    )
    progress: list[tuple[str, int, int]] = []
    out = prepare_wheelhouse(
        lock,
        tmp_path / "house",
        cache_dir=tmp_path / "cache",
        progress=lambda *call: progress.append(call),
    )
    assert [p.name for p in out] == [entry.filename]
    assert (tmp_path / "cache" / entry.filename).is_file()
    assert file_sha256(out[0]) in entry.sha256
    assert progress[-1][1:] == (1, 1)
    # Nothing half-downloaded is left behind in the cache.
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [entry.filename]


def test_tampered_wheel_is_refused(
    notebook_image, image_settings: Settings, entries: list[LockEntry], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    entry, wheel = _one_entry_lock(entries, wheel_cache_dir(image_settings), tmp_path / "one.lock")
    tampered = cache / wheel.name
    shutil.copy2(wheel, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(WheelhouseError, match="does not match the lock") as raised:
        prepare_wheelhouse(tmp_path / "one.lock", tmp_path / "house", cache_dir=cache)
    assert str(tampered) in str(raised.value) and entry.pin in str(raised.value)
    assert "Delete" in (raised.value.fix or "")
    assert not (tmp_path / "house" / wheel.name).exists()


def test_build_stage_refuses_a_wheel_not_matching_the_lock(
    notebook_image,
    docker_engine: docker.DockerClient,
    image_settings: Settings,
    entries: list[LockEntry],
    repo: Path,
    tmp_path: Path,
) -> None:
    """Even a wheel smuggled into the build context past the host check is refused by pip."""
    context = tmp_path / "context"
    (context / "wheels").mkdir(parents=True)
    (context / "trenv-wheel").mkdir()
    shutil.copy2(repo / "images/notebook/Dockerfile", context / "Dockerfile")
    _entry, wheel = _one_entry_lock(
        entries, wheel_cache_dir(image_settings), context / "requirements.lock"
    )
    tampered = context / "wheels" / wheel.name
    shutil.copy2(wheel, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ImageError, match="DO NOT MATCH THE HASHES"):
        run_build(
            docker_engine,
            context=context,
            tag="trenv/notebook:pytest-tampered",
            buildargs={"BASE_IMAGE": BASE_IMAGE},
            stage="tampered",
        )
