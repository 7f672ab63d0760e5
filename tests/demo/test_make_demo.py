"""`make demo`, the README's first command, run as written (from the repository, through the
Makefile and scripts/demo.sh), on a temporary TRENV_HOME with free ports and its own network
so it never touches a demo already running on this machine.

The image tests' wheel and rootfs caches are shared (a symlink) so the notebook image builds
from the Docker layer cache instead of downloading its wheelhouse again.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import docker
import pytest
import requests

from tests.hub.conftest import notebook_image_id  # noqa: F401  (fixture: builds the caches)
from tests.support.net import free_port
from trenv.airlock.states import REVIEWABLE
from trenv.config import Settings
from trenv.demo.installation import PROJECT
from trenv.hub.hubconfig import network_spec
from trenv.hub.network import remove_network
from trenv.images.paths import repo_root
from trenv.layout import workspace_dir
from trenv.store import dispose_engines, transaction
from trenv.store.models import ExportRequest

pytestmark = pytest.mark.timeout(1500)


def test_make_demo_ends_in_the_documented_state(
    tmp_path: Path,
    notebook_image_id: str,  # noqa: F811
) -> None:
    home = tmp_path / "demo"
    home.mkdir()
    (home / "cache").symlink_to(repo_root() / ".trenv" / "cache")
    suffix = secrets.token_hex(2)
    overrides = {
        "TRENV_HOME": str(home),
        "TRENV_HUB_PUBLIC_PORT": str(free_port()),
        "TRENV_HUB_API_PORT": str(free_port()),
        "TRENV_WEB_API_PORT": str(free_port()),
        "TRENV_PROXY_API_PORT": str(free_port()),
        "TRENV_NETWORK_NAME": f"trenv-test-{suffix}",
        "TRENV_BRIDGE_NAME": f"brt-{suffix}",
    }
    env = {**os.environ, **overrides}
    settings = Settings(**{k.removeprefix("TRENV_").lower(): v for k, v in overrides.items()})
    try:
        done = subprocess.run(
            ["make", "demo"], cwd=repo_root(), env=env, capture_output=True, text=True,
            timeout=1400,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        url = f"http://127.0.0.1:{overrides['TRENV_HUB_PUBLIC_PORT']}"
        assert f"trenv demo is running at {url}" in done.stdout
        # The hub answers, with the demo accounts' logins written where the README says.
        assert requests.get(f"{url}/hub/login", timeout=30).status_code == 200
        logins = json.loads((home / "credentials.json").read_text())["users"]
        assert {"rosa", "chris", "cleo", "adam"} <= set(logins)
        assert all(u["password"] and u["totp_secret"] for u in logins.values())
        assert (home / "credentials.json").stat().st_mode & 0o077 == 0
        # The notebooks wait in the researcher's workspace, a request in the checkers' queue.
        notebooks = workspace_dir(settings, PROJECT, "rosa") / "notebooks"
        assert len(list(notebooks.glob("*.ipynb"))) == 3
        with transaction(settings) as session:
            waiting = [r for r in session.query(ExportRequest).all() if r.state in REVIEWABLE]
            assert [r.project.slug for r in waiting] == [PROJECT]
        dispose_engines()
        # `make demo` again changes nothing and still succeeds.
        again = subprocess.run(
            ["make", "demo"], cwd=repo_root(), env=env, capture_output=True, text=True,
            timeout=1400,
        )  # fmt: skip
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    finally:
        subprocess.run(["make", "demo-stop"], cwd=repo_root(), env=env, timeout=300)
        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"name": f"trenv-brt-{suffix}"}):
            container.remove(force=True)
        remove_network(client, network_spec(settings))
