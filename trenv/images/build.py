"""``build_image``: the one call that turns this repository into a labelled notebook image.

Steps: make sure the base image exists (see :mod:`trenv.images.base`), assemble the build
context with the verified wheelhouse and trenv's wheel, build through the Docker API, and
describe the result. Recording the image in the registry and approving it are the callers'
business (``trenv image build`` / ``trenv image approve``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker

import trenv
from trenv.config import Settings, get_settings
from trenv.hashing import file_sha256
from trenv.hub.account import LABEL_UID, container_account
from trenv.images.base import BASE_IMAGE, ensure_base_image
from trenv.images.context import assemble_context
from trenv.images.docker_build import run_build
from trenv.images.engine import docker_client
from trenv.images.errors import ImageError
from trenv.images.lock import check_lock_matches_project
from trenv.images.lockfile import read_lock
from trenv.images.paths import cache_dir, repo_root, rootfs_cache_dir, wheel_cache_dir
from trenv.images.progress import ProgressCallback, no_progress

KINDS: tuple[str, ...] = ("notebook",)
# Default repository of each kind. A parameter of build_image rather than read from Settings
# here so this module works with any Settings; the CLI passes the configured name.
DEFAULT_NAMES: dict[str, str] = {"notebook": "trenv/notebook"}
LABEL_VERSION = "org.trenv.version"
LABEL_LOCK = "org.trenv.lock-sha256"
LABEL_KIND = "org.trenv.kind"
STAGE_BUILD = "build image"


@dataclass(frozen=True)
class BuiltImage:
    """What the registry needs to record about a freshly built image."""

    name: str
    tag: str
    image_id: str  # sha256:<digest of the image configuration>; content-addressed
    labels: dict[str, str]
    packages: tuple[tuple[str, str], ...]  # (name, version) of every locked distribution
    lock_sha256: str
    trenv_version: str
    size_bytes: int
    base_image_id: str

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def digest(self) -> str:
        """The image's content digest. Local images have no registry digest, so this is the
        id, which is itself the sha256 of the image configuration (and so of its layers)."""
        return self.image_id


def image_labels(kind: str, lock_sha256: str) -> dict[str, str]:
    return {
        LABEL_VERSION: trenv.__version__,
        LABEL_LOCK: lock_sha256,
        LABEL_KIND: kind,
        "org.opencontainers.image.title": f"trenv {kind}",
        "org.opencontainers.image.version": trenv.__version__,
    }


def default_tag(lock_sha256: str) -> str:
    """``<trenv version>-<first 12 hex of the lock digest>``: a new lock gives a new tag."""
    return f"{trenv.__version__}-{lock_sha256[:12]}"


def build_image(
    kind: str,
    *,
    settings: Settings | None = None,
    progress_callback: ProgressCallback = no_progress,
    tag: str | None = None,
    name: str | None = None,
    client: docker.DockerClient | None = None,
    source_dir: Path | None = None,
    base_image: str = BASE_IMAGE,
    nocache: bool = False,
) -> BuiltImage:
    """Build the ``kind`` image offline and return its description.

    ``progress_callback(stage, completed, total)`` is called as work advances; stages are
    bootstrapping the base (first build only), downloading/verifying wheels, building the
    trenv wheel and the Docker build steps. ``name`` is the image repository (default
    ``trenv/notebook``; the CLI passes the configured ``notebook_image`` setting) and ``tag``
    defaults to ``<trenv version>-<lock digest prefix>``. Raises
    :class:`~trenv.images.errors.ImageError` (with a fix) on any failure.
    """
    if kind not in KINDS:
        raise ImageError(f"unknown image kind {kind!r}.", f"Known kinds: {', '.join(KINDS)}.")
    settings = settings or get_settings()
    client = client or docker_client()
    source_dir = source_dir or repo_root()
    image_dir = source_dir / "images" / kind
    lock = image_dir / "requirements.lock"
    entries = read_lock(lock)
    # Fail in a second, not after minutes of building, when pyproject.toml moved on.
    check_lock_matches_project(entries, source_dir / "pyproject.toml")
    lock_sha256 = file_sha256(lock)
    tag = tag or default_tag(lock_sha256)
    name = name or DEFAULT_NAMES[kind]

    account = container_account(settings)  # the uid the image is built for
    base_id = ensure_base_image(
        client,
        cache_dir=rootfs_cache_dir(settings),
        account=account,
        name=base_image,
        progress=progress_callback,
    )
    build_root = cache_dir(settings).parent / "build"
    build_root.mkdir(parents=True, exist_ok=True)
    labels = {**image_labels(kind, lock_sha256), LABEL_UID: str(account.uid)}
    with tempfile.TemporaryDirectory(prefix=f"{kind}-", dir=build_root) as tmp:
        context = Path(tmp)
        assemble_context(
            image_dir,
            context,
            source_dir=source_dir,
            wheel_cache=wheel_cache_dir(settings),
            progress=progress_callback,
        )
        image_id = run_build(
            client,
            context=context,
            tag=f"{name}:{tag}",
            buildargs={
                "BASE_IMAGE": base_image,
                "NB_UID": str(account.uid),
                "NB_GID": str(account.gid),
            },
            labels=labels,
            stage=STAGE_BUILD,
            progress=progress_callback,
            nocache=nocache,
        )
    image = client.images.get(image_id)
    actual = image.labels or {}
    wrong = {k: actual.get(k) for k, v in labels.items() if actual.get(k) != v}
    if wrong:
        raise ImageError(
            f"{name}:{tag} was built without the expected labels: {wrong}.", "Build again."
        )
    return BuiltImage(
        name=name,
        tag=tag,
        image_id=image_id,
        labels=dict(actual),
        packages=tuple((e.name, e.version) for e in entries),
        lock_sha256=lock_sha256,
        trenv_version=trenv.__version__,
        size_bytes=int(image.attrs.get("Size", 0)),
        base_image_id=base_id,
    )
