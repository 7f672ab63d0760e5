"""Getting a Docker engine: the install script and the client's error."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker
import pytest

from trenv.images.engine import docker_client, ensure_engine
from trenv.images.errors import DockerUnavailable


def test_install_script_is_idempotent(docker_engine: docker.DockerClient, repo: Path) -> None:
    result = subprocess.run(
        [str(repo / "scripts" / "install-docker.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "already answering" in result.stdout
    assert docker_engine.version()["ApiVersion"] >= "1.41"


def test_unreachable_engine_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DockerUnavailable) as raised:
        docker_client(f"unix://{tmp_path}/docker.sock")
    assert f"{tmp_path}/docker.sock" in str(raised.value)
    assert "scripts/install-docker.sh" in str(raised.value)


def test_ensure_engine_leaves_a_running_engine_alone(
    docker_engine: docker.DockerClient, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "install.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    client = ensure_engine(install_script=script)
    assert client.ping()
    assert not marker.exists()
