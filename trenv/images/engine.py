"""Connecting to the Docker engine, with an error that says how to start one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker

# Not an HTTP client of ours (trenv's is httpx): docker-py is built on requests and lets its
# connection errors through unwrapped, so catching them needs requests' exception class.
import requests
from docker.errors import DockerException

from trenv.images.errors import DockerUnavailable, ImageError
from trenv.images.paths import repo_root

# The engine on these machines is Debian's docker.io 20.10; pinning its API version keeps
# docker-py from probing (and a newer engine from changing behaviour underneath us).
API_VERSION = "1.41"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def docker_client(base_url: str | None = None, timeout: int = 600) -> docker.DockerClient:
    """A client whose engine has answered a ping; raises :class:`DockerUnavailable` if not.

    ``base_url`` defaults to ``$DOCKER_HOST`` or the local socket. The long timeout is for
    image builds and imports, which hold one API call open for minutes.
    """
    try:
        if base_url is None:
            client = docker.from_env(version=API_VERSION, timeout=timeout)
        else:
            client = docker.DockerClient(base_url=base_url, version=API_VERSION, timeout=timeout)
        client.ping()
    # docker-py lets the transport's connection errors through unwrapped.
    except (DockerException, requests.RequestException, OSError) as exc:
        where = base_url or DEFAULT_SOCKET
        raise DockerUnavailable(
            f"Docker engine not reachable at {where} ({exc}).",
            "Run scripts/install-docker.sh as root to install and start it.",
        ) from exc
    return client


def ensure_engine(install_script: Path | None = None) -> docker.DockerClient:
    """A client for the local engine, installing and starting it first if it does not answer.

    Runs ``scripts/install-docker.sh`` (which needs root) from the trenv checkout; for test
    sessions and set-up commands, not for the web service.
    """
    try:
        return docker_client()
    except DockerUnavailable:
        pass
    script = install_script or repo_root() / "scripts" / "install-docker.sh"
    result = subprocess.run([str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DockerUnavailable(
            f"{script} could not install or start the Docker engine:\n{result.stderr.strip()}",
            "Run it by hand as root and read its message.",
        )
    return docker_client()


def image_id(client: docker.DockerClient, name: str) -> str:
    """The id (``sha256:…``) of the local image ``name``."""
    found = client.images.get(name).id
    if not found:
        raise ImageError(f"the Docker engine reports no id for image {name}.", "Build it again.")
    return found
