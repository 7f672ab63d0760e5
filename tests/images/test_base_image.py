"""The Debian base: mirror discovery, the cached bootstrap and reuse of a present image."""

from __future__ import annotations

from pathlib import Path

import docker

from trenv.config import Settings
from trenv.hub.account import ContainerAccount
from trenv.images.base import (
    BASE_IMAGE,
    ensure_base_image,
    host_debian_mirror,
    import_rootfs,
    rootfs_tarball,
)
from trenv.images.build import BuiltImage
from trenv.images.paths import rootfs_cache_dir


def test_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert host_debian_mirror([sources]) == "http://mirror.invalid/debian"


def test_mirror_is_read_from_one_line_sources(tmp_path: Path) -> None:
    sources = tmp_path / "sources.list"
    sources.write_text(
        "deb http://other.invalid/x trixie main\n"
        "deb [arch=amd64] http://mirror.invalid/debian bookworm main contrib\n"
    )
    assert host_debian_mirror([tmp_path / "absent", sources]) == "http://mirror.invalid/debian"
    assert host_debian_mirror([tmp_path / "absent"]) is None


def test_present_base_image_is_used_without_bootstrapping(
    notebook_image: BuiltImage,
    docker_engine: docker.DockerClient,
    tmp_path: Path,
    account: ContainerAccount,
) -> None:
    image_id = ensure_base_image(docker_engine, cache_dir=tmp_path / "rootfs", account=account)
    assert image_id == docker_engine.images.get(BASE_IMAGE).id == notebook_image.base_image_id
    assert not (tmp_path / "rootfs").exists()


def test_cached_bootstrap_imports_as_bookworm_with_python_3_11_2(
    notebook_image: BuiltImage, docker_engine: docker.DockerClient, image_settings: Settings
) -> None:
    tarball = rootfs_tarball(rootfs_cache_dir(image_settings))
    assert tarball.is_file() and tarball.stat().st_size > 50_000_000
    name = "trenv/rootfs:pytest"
    import_rootfs(docker_engine, tarball, name)
    try:
        output = docker_engine.containers.run(
            name,
            [
                "sh",
                "-c",
                "cat /etc/debian_version; python3 -c 'import platform, ensurepip; "
                "print(platform.python_version())'",
            ],
            remove=True,
            network_mode="none",
        ).decode()
    finally:
        docker_engine.images.remove(name)
    debian, python = output.split()
    assert debian.startswith("12.")
    assert python == "3.11.2"
