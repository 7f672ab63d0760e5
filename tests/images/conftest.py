"""Fixtures for the image tests: a real Docker engine and one notebook image per session.

The engine is installed and started by scripts/install-docker.sh (needs root, as in CI), never
skipped. The image is built once per session with a test tag; wheels, the Debian bootstrap and
Docker's layer cache persist in the repository's .trenv/ between sessions, so only the first
session on a machine pays for the cold build.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.images.helpers import ProgressLog, Runner
from trenv.config import Settings
from trenv.hub.account import ContainerAccount, container_account
from trenv.images.build import BuiltImage, build_image
from trenv.images.engine import ensure_engine
from trenv.images.paths import repo_root

TEST_TAG = "pytest"


@pytest.fixture(scope="session")
def repo() -> Path:
    return repo_root()


@pytest.fixture(scope="session")
def image_settings(repo: Path) -> Settings:
    # A fixed home (not a per-test temp dir) so the wheel and rootfs caches survive sessions.
    return Settings(home=repo / ".trenv")


@pytest.fixture(scope="session")
def account(image_settings: Settings) -> ContainerAccount:
    """The host's dedicated container account (made now if missing: make test runs as root)."""
    return container_account(image_settings)


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


@pytest.fixture(scope="session")
def run_in_image(docker_engine: docker.DockerClient, notebook_image: BuiltImage) -> Runner:
    # By id, not by tag: another test session (tests/hub) may move the shared "pytest" tag.
    return Runner(docker_engine, notebook_image.image_id)


@pytest.fixture
def scratch_containers(docker_engine: docker.DockerClient) -> Iterator[list[str]]:
    """Container ids a test started; removed afterwards even if the test fails."""
    ids: list[str] = []
    yield ids
    for container_id in ids:
        with contextlib.suppress(docker.errors.NotFound):
            docker_engine.containers.get(container_id).remove(force=True)
