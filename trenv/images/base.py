"""The base image every trenv container starts from: Debian bookworm, minimal, with python3.

No container registry is reachable here, so the base is made locally: ``debootstrap
--variant=minbase`` into a temporary directory, packed as a tarball (kept in
``$TRENV_HOME/cache/rootfs`` so later builds skip the bootstrap), imported as a root-filesystem
image, and finished by ``images/base/Dockerfile``. A base image already present in the local
engine is used as it is, so an operator who brings their own (e.g. from an internal registry)
skips all of this.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import docker
from docker.errors import ImageNotFound

from trenv.hub.account import LABEL_UID, ContainerAccount
from trenv.images.docker_build import run_build
from trenv.images.engine import image_id
from trenv.images.errors import ImageError
from trenv.images.paths import repo_root
from trenv.images.progress import ProgressCallback, no_progress

BASE_IMAGE = "trenv/base:bookworm"
ROOTFS_IMAGE = "trenv/rootfs:bookworm"
SUITE = "bookworm"
# python3 is bookworm's 3.11.2 (the wheels are locked for it); python3-venv brings ensurepip's
# bundled pip so the build stage needs no network; tini reaps zombies as PID 1.
INCLUDE_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "tini", "ca-certificates")
STAGE_BOOTSTRAP = "bootstrap Debian"
STAGE_IMPORT = "import root filesystem"
STAGE_BASE = "build base image"
_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def host_debian_mirror(sources: Sequence[Path] = _SOURCES) -> str | None:
    """The Debian mirror this host's apt uses, so the bootstrap goes where apt already goes.

    None lets debootstrap use its built-in default.
    """
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        # deb822 stanzas ("URIs: ... Suites: bookworm ...") or one-line "deb URI bookworm main".
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s", text, re.M):
            if match.group(2) == SUITE:
                return match.group(1)
    return None


def rootfs_tarball(cache_dir: Path, mirror: str | None = None) -> Path:
    """A cached ``debootstrap`` tarball of bookworm minbase; made on the first call (as root)."""
    key = hashlib.sha256(",".join(sorted(INCLUDE_PACKAGES)).encode()).hexdigest()[:12]
    tarball = cache_dir / f"{SUITE}-minbase-{key}.tar"
    if tarball.is_file():
        return tarball
    # /usr/sbin is not on every PATH (e.g. sudo without a login shell).
    debootstrap = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin")
    if debootstrap is None:
        raise ImageError(
            "debootstrap is not installed, so the Debian base image cannot be made.",
            "Run scripts/install-docker.sh as root (it installs debootstrap).",
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    mirror = mirror or host_debian_mirror()
    with tempfile.TemporaryDirectory(prefix="trenv-rootfs-", dir=cache_dir) as tmp:
        root = Path(tmp) / "root"
        cmd = [
            debootstrap, "--variant=minbase", f"--include={','.join(INCLUDE_PACKAGES)}",
            SUITE, str(root), *([mirror] if mirror else []),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = root / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace")[-2000:] if log.is_file() else result.stderr
            raise ImageError(
                f"debootstrap of Debian {SUITE} failed:\n{detail.strip()[-2000:]}",
                "debootstrap must run as root and reach the Debian mirror "
                f"({mirror or 'debootstrap default'}).",
            )
        # Package caches and lists are useless in an image that never runs apt: drop them.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = Path(tmp) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True
        )
        partial.replace(tarball)
    return tarball


def import_rootfs(client: docker.DockerClient, tarball: Path, name: str = ROOTFS_IMAGE) -> str:
    """``docker import`` the tarball as ``name``; returns the image id."""
    repository, tag = name.rsplit(":", 1)
    client.api.import_image_from_file(
        str(tarball),
        repository=repository,
        tag=tag,
        # An imported filesystem has no configuration at all; give it the usual PATH.
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["/bin/bash"]',
        ],
    )
    return image_id(client, name)


def ensure_base_image(
    client: docker.DockerClient,
    *,
    cache_dir: Path,
    account: ContainerAccount,
    name: str = BASE_IMAGE,
    rebuild: bool = False,
    progress: ProgressCallback = no_progress,
) -> str:
    """The id of the base image ``name`` for the containers' ``account``, making it first if
    the engine lacks it or has it for another uid."""
    if not rebuild and image_exists(client, name):
        labels = client.images.get(name).labels or {}
        if labels.get(LABEL_UID) == str(account.uid):
            return image_id(client, name)
    if rebuild or not image_exists(client, ROOTFS_IMAGE):
        progress(STAGE_BOOTSTRAP, 0, 1)
        tarball = rootfs_tarball(cache_dir)
        progress(STAGE_BOOTSTRAP, 1, 1)
        progress(STAGE_IMPORT, 0, 1)
        import_rootfs(client, tarball)
        progress(STAGE_IMPORT, 1, 1)
    return run_build(
        client,
        context=repo_root() / "images" / "base",
        tag=name,
        buildargs={
            "ROOTFS_IMAGE": ROOTFS_IMAGE,
            "NB_UID": str(account.uid),
            "NB_GID": str(account.gid),
        },
        labels={"org.trenv.base": f"debian-{SUITE}-minbase", LABEL_UID: str(account.uid)},
        stage=STAGE_BASE,
        progress=progress,
    )
