"""The research notebooks in a researcher's workspace, and run in a real notebook server.

Used by `trenv demo notebooks` / `trenv demo request` and by the CI test that executes every
notebook: the server is spawned through the hub API with the operator's token, exactly as a
login would start it (same image, mounts, network and lock-down), and the notebook runs in
that container as its user with nbclient, against the project's published data in /data.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

from trenv.airlock import queries
from trenv.airlock.states import REVIEWABLE
from trenv.config import Settings
from trenv.errors import Invalid
from trenv.hub.account import container_account
from trenv.images.paths import repo_root
from trenv.layout import workspace_dir
from trenv.store import transaction

FOLDER = "notebooks"  # inside the workspace: /home/jovyan/work/notebooks
NOTEBOOKS = ("01_reoffending.ipynb", "02_forensic_drugs.ipynb", "03_cybercrime_shift.ipynb")

# Runs inside the container. Outputs stay in /tmp: the workspace copy keeps no outputs, so
# the researcher opens clean notebooks (and a notebook with outputs would need review).
_RUNNER = """
import json, re, sys, time
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
started = time.monotonic()
try:
    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[2]}}).execute()
    error = None
except CellExecutionError as exc:
    error = str(exc)[-4000:]
nbformat.write(nb, "/tmp/" + path.rsplit("/", 1)[-1])
ids = []
for cell in nb.cells:
    for out in cell.get("outputs", []):
        text = out.get("data", {}).get("text/plain", "")
        ids += [int(i) for i in re.findall(r"<trenv ExportRequest #(\\d+)", text)]
print(json.dumps({"error": error, "requests": ids, "seconds": time.monotonic() - started}))
"""


@dataclass(frozen=True)
class NotebookRun:
    notebook: str
    error: str | None
    requests: list[int]  # export requests the notebook created
    seconds: float


def source_dir() -> Path:
    return repo_root() / FOLDER


def copy_to_workspace(settings: Settings, project: str, username: str) -> list[Path]:
    """Copy the notebooks into the user's workspace for ``project``; never overwrite one the
    researcher may have edited. The files belong to the container's uid, as the spawner's
    own directories do."""
    workspace = workspace_dir(settings, project, username)
    target = workspace / FOLDER
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in NOTEBOOKS:
        dest = target / name
        if not dest.exists():
            shutil.copyfile(source_dir() / name, dest)
            copied.append(dest)
    account = container_account(settings)
    for path in (workspace, target, *target.iterdir()):
        os.chown(path, account.uid, account.gid)
    return copied


class HubOperator:
    """The few hub API calls that start and stop a user's server (operator token)."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=120,
            follow_redirects=True,  # requests followed redirects; keep behaving the same
            **kwargs,
        )

    def ready(self, user: str) -> bool:
        model = self.api("GET", f"/users/{user}").json()
        return bool((model.get("servers") or {}).get("", {}).get("ready"))

    def start(self, user: str, project: str, timeout: float = 120) -> None:
        self.api("POST", f"/users/{user}")  # 201 the first time, 409 afterwards
        if self.ready(user):
            return
        reply = self.api("POST", f"/users/{user}/server", json={"project": project})
        if reply.status_code not in (201, 202, 400):  # 400: already starting
            raise Invalid(f"the hub did not start {user}'s server: {reply.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready(user):
                return
            time.sleep(0.5)
        raise Invalid(f"{user}'s server did not become ready in {timeout:.0f} s.")

    def stop(self, user: str) -> None:
        self.api("DELETE", f"/users/{user}/server")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.api("GET", f"/users/{user}").json().get(
            "servers"
        ):
            time.sleep(0.5)


def container_name(settings: Settings, user: str) -> str:
    return f"trenv-{settings.bridge_name}-{user}"  # the spawner's prefix (hubconfig.py)


def run_notebook(
    client: docker.DockerClient,
    settings: Settings,
    user: str,
    notebook: str,
    *,
    timeout: int = 600,
) -> NotebookRun:
    """Execute ``notebooks/<notebook>`` from the workspace inside the user's running server."""
    container = client.containers.get(container_name(settings, user))
    folder = f"/home/jovyan/work/{FOLDER}"
    script = _RUNNER.replace("TIMEOUT", str(timeout))
    code, output = container.exec_run(
        ["python3", "-c", script, f"{folder}/{notebook}", folder],
        user=container_account(settings).user,
    )
    text = output.decode(errors="replace")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    if code != 0 or not last.startswith("{"):
        return NotebookRun(notebook, f"the runner failed (exit {code}): {text[-4000:]}", [], 0.0)
    result = json.loads(last)
    return NotebookRun(notebook, result["error"], list(result["requests"]), result["seconds"])


def waiting_request(settings: Settings, project: str, user: str) -> int | None:
    """The id of ``user``'s newest request in ``project`` that waits for checkers, if any."""
    with transaction(settings) as session:
        mine = [r for r in queries.requests_of(session, user, project) if r.requester == user]
        waiting = [r.id for r in mine if r.state in REVIEWABLE]
    return max(waiting, default=None)


def ensure_waiting_request(
    settings: Settings, hub: HubOperator, client: docker.DockerClient, project: str, user: str
) -> tuple[int, bool]:
    """A request of ``user`` waiting in the checkers' queue: the existing one, or one made by
    running notebook 1 in the user's own server (started for it and stopped afterwards, so
    the researcher's first login starts a fresh one). Returns (request id, created now)."""
    existing = waiting_request(settings, project, user)
    if existing is not None:
        return existing, False
    copy_to_workspace(settings, project, user)
    hub.start(user, project)
    try:
        run = run_notebook(client, settings, user, NOTEBOOKS[0])
    finally:
        hub.stop(user)
    if run.error or not run.requests:
        raise Invalid(f"{NOTEBOOKS[0]} did not create an export request: {run.error}")
    return run.requests[-1], True
