"""Helpers shared by the image tests (fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker


@dataclass
class ProgressLog:
    calls: list[tuple[str, int, int]]

    def __call__(self, stage: str, completed: int, total: int) -> None:
        self.calls.append((stage, completed, total))


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
