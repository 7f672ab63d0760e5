"""Fixtures for the image tests: a real Docker engine and one notebook image per session.

The engine is installed and started by scripts/install-docker.sh (needs root, as in CI), never
skipped. The image is built once per session with a test tag; wheels, the Debian bootstrap and
Docker's layer cache persist in the repository's .trenv/ between sessions, so only the first
session on a machine pays for the cold build.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from trenv.config import Settings
from trenv.images.build import BuiltImage, build_image
from trenv.images.engine import ensure_engine
from trenv.images.paths import repo_root

TEST_TAG = "pytest"


@dataclass
class ProgressLog:
    calls: list[tuple[str, int, int]]

    def __call__(self, stage: str, completed: int, total: int) -> None:
        self.calls.append((stage, completed, total))


@pytest.fixture(scope="session")
def repo() -> Path:
    return repo_root()


@pytest.fixture(scope="session")
def image_settings(repo: Path) -> Settings:
    # A fixed home (not a per-test temp dir) so the wheel and rootfs caches survive sessions.
    return Settings(home=repo / ".trenv")


@pytest.fixture(scope="session")
def docker_engine() -> docker.DockerClient:
    # Installs and starts the engine (scripts/install-docker.sh) when it does not answer.
    return ensure_engine()


@pytest.fixture(scope="session")
def build_progress() -> ProgressLog:
    return ProgressLog(calls=[])


@pytest.fixture(scope="session")
def notebook_image(
    docker_engine: docker.DockerClient, image_settings: Settings, build_progress: ProgressLog
) -> BuiltImage:
    return build_image(
        "notebook",
        settings=image_settings,
        progress_callback=build_progress,
        tag=TEST_TAG,
        client=docker_engine,
    )


@dataclass
class Runner:
    """Runs one command in a fresh container of the test image and returns (exit code, output)."""

    client: docker.DockerClient
    image: str

    def __call__(self, command: list[str], **options: Any) -> tuple[int, str]:
        container = self.client.containers.create(self.image, command, **options)
        try:
            container.start()
            code = int(container.wait(timeout=300)["StatusCode"])
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
        finally:
            container.remove(force=True)
        return code, output


# How DockerSpawner will run it: read-only root, tmpfs /tmp and $HOME owned by uid 1000,
# no capabilities, no privilege escalation, no network.
LOCKED_DOWN: dict[str, Any] = {
    "read_only": True,
    "tmpfs": {
        "/tmp": "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=1777",
        "/home/jovyan": "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700",
    },
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "network_mode": "none",
}


@pytest.fixture(scope="session")
def run_in_image(docker_engine: docker.DockerClient, notebook_image: BuiltImage) -> Runner:
    return Runner(docker_engine, notebook_image.reference)


@pytest.fixture
def scratch_containers(docker_engine: docker.DockerClient) -> Iterator[list[str]]:
    """Container ids a test started; removed afterwards even if the test fails."""
    ids: list[str] = []
    yield ids
    for container_id in ids:
        with contextlib.suppress(docker.errors.NotFound):
            docker_engine.containers.get(container_id).remove(force=True)
