"""Helpers shared by the image tests (fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker

from trenv.hub.account import ContainerAccount


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


def locked_down(account: ContainerAccount) -> dict[str, Any]:
    """How DockerSpawner runs the image: as the dedicated account, read-only root, tmpfs /tmp
    and $HOME owned by it, no capabilities, no privilege escalation, no network."""
    ids = f"uid={account.uid},gid={account.gid}"
    return {
        "user": account.user,
        "read_only": True,
        "tmpfs": {
            "/tmp": f"rw,nosuid,nodev,size=64m,{ids},mode=1777",
            "/home/jovyan": f"rw,nosuid,nodev,size=64m,{ids},mode=0700",
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "network_mode": "none",
    }
