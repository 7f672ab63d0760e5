"""The notebook image, built for real: labels, user, contents, lock-down."""

from __future__ import annotations

import importlib.metadata
import json
import time

import docker
import pytest

import trenv
from tests.images.helpers import ProgressLog, Runner, locked_down
from trenv.hashing import file_sha256
from trenv.hub.account import ContainerAccount
from trenv.images.build import (
    DEFAULT_NAMES,
    LABEL_LOCK,
    LABEL_VERSION,
    STAGE_BUILD,
    BuiltImage,
    build_image,
)
from trenv.images.errors import ImageError
from trenv.images.lockfile import read_lock

IMPORTS = (
    "import trenv.lab, pandas, opendp, polars, sklearn, statsmodels, duckdb, pyarrow, matplotlib"
)


def test_labels_carry_version_and_lock_digest(
    notebook_image: BuiltImage, docker_engine: docker.DockerClient, repo
) -> None:
    lock = repo / "images" / "notebook" / "requirements.lock"
    # Looked up by id: a concurrent session (tests/hub) may retag trenv/notebook:pytest.
    labels = docker_engine.images.get(notebook_image.image_id).labels
    assert labels[LABEL_VERSION] == trenv.__version__
    assert labels[LABEL_LOCK] == file_sha256(lock)
    assert notebook_image.labels[LABEL_LOCK] == notebook_image.lock_sha256 == file_sha256(lock)
    assert notebook_image.image_id == docker_engine.images.get(notebook_image.image_id).id
    assert notebook_image.reference in docker_engine.images.get(notebook_image.image_id).tags or (
        docker_engine.images.get(notebook_image.reference).labels[LABEL_LOCK] == file_sha256(lock)
    )
    assert notebook_image.digest.startswith("sha256:")
    assert notebook_image.reference == f"{DEFAULT_NAMES['notebook']}:pytest"
    assert dict(notebook_image.packages)["jupyterlab"].startswith("4.")


def test_build_reports_progress_to_the_end(build_progress: ProgressLog) -> None:
    build_calls = [
        (done, total) for stage, done, total in build_progress.calls if stage == STAGE_BUILD
    ]
    assert build_calls, f"no {STAGE_BUILD!r} progress among {build_progress.calls[:5]}"
    assert build_calls[-1][0] == build_calls[-1][1] > 1
    completed = [done for done, _ in build_calls]
    assert completed == sorted(completed)


def test_runs_as_the_dedicated_account_by_default(
    run_in_image: Runner, account: ContainerAccount
) -> None:
    code, output = run_in_image(["sh", "-c", "id -u; id -g; stat -c %u:%g /home/jovyan/work"])
    assert code == 0, output
    uid, gid = str(account.uid), str(account.gid)
    assert output.split() == [uid, gid, f"{uid}:{gid}"]
    assert account.uid != 1000  # not the first person's login on the host


def test_analysis_stack_imports_under_lockdown(
    run_in_image: Runner, account: ContainerAccount
) -> None:
    code, output = run_in_image(
        ["python3", "-c", f"{IMPORTS}; print('ok')"], **locked_down(account)
    )
    assert code == 0, output
    assert output.strip().endswith("ok")


def test_installed_packages_are_exactly_the_lock(run_in_image: Runner, repo) -> None:
    script = (
        "import importlib.metadata as m, json;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    code, output = run_in_image(["python3", "-c", script])
    assert code == 0, output
    installed = {
        k.lower().replace("_", "-").replace(".", "-"): v for k, v in json.loads(output).items()
    }
    locked = {e.name: e.version for e in read_lock(repo / "images/notebook/requirements.lock")}
    for name, version in locked.items():
        assert installed.get(name) == version, (
            f"{name}: locked {version}, image has {installed.get(name)}"
        )
    assert installed["trenv"] == trenv.__version__
    # Only the venv's own bootstrap packages may be there besides the lock and trenv.
    extra = set(installed) - set(locked) - {"trenv", "pip", "setuptools"}
    assert not extra, f"not in the lock: {sorted(extra)}"


def test_singleuser_server_runs_with_read_only_root(
    run_in_image: Runner, account: ContainerAccount
) -> None:
    code, output = run_in_image(["jupyterhub-singleuser", "--version"], **locked_down(account))
    assert code == 0, output
    hub_major_minor = importlib.metadata.version("jupyterhub").split(".")[:2]
    assert output.strip().split(".")[:2] == hub_major_minor, output


# Stands in for the hub's API inside the container: the single-user server asks the hub for
# its version at start-up and keeps retrying (then exits) when nothing answers.
FAKE_HUB = """
import http.server, json
class Hub(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": "%s"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", "%s")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8081), Hub).serve_forever()
"""


def test_singleuser_server_serves_with_read_only_root(
    docker_engine: docker.DockerClient,
    notebook_image: BuiltImage,
    scratch_containers: list[str],
    account: ContainerAccount,
) -> None:
    """The image's default command, started as a hub would, serves with a read-only root."""
    hub_version = importlib.metadata.version("jupyterhub")
    environment = {
        "FAKE_HUB": FAKE_HUB % (hub_version, hub_version),
        "JUPYTERHUB_API_TOKEN": "pytest-token",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/pytest/",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:8888/user/pytest/",
        "JUPYTERHUB_USER": "pytest",
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-pytest",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/pytest/oauth_callback",
    }
    command = notebook_image_command(docker_engine, notebook_image)
    container = docker_engine.containers.run(
        notebook_image.image_id,
        ["sh", "-c", f'python3 -c "$FAKE_HUB" & exec {" ".join(command)}'],
        environment=environment,
        detach=True,
        **locked_down(account),
    )
    assert container.id is not None
    scratch_containers.append(container.id)
    probe = (
        "import urllib.request;"
        "r = urllib.request.urlopen('http://127.0.0.1:8888/user/pytest/api', timeout=5);"
        "print(r.status)"
    )
    deadline = time.monotonic() + 90
    last = ""
    while time.monotonic() < deadline:
        code, out = container.exec_run(["python3", "-c", probe])
        assert isinstance(out, bytes)
        last = out.decode(errors="replace")
        if code == 0 and last.strip() == "200":
            break
        container.reload()
        assert container.status == "running", container.logs().decode(errors="replace")
        time.sleep(1)
    else:
        pytest.fail(
            f"the single-user server never answered: {last}\n{container.logs().decode()[-3000:]}"
        )
    logs = container.logs().decode(errors="replace")
    assert f"single-user server extension version {hub_version}" in logs, logs[-3000:]


def notebook_image_command(client: docker.DockerClient, image: BuiltImage) -> list[str]:
    """The image's default command (what DockerSpawner runs unless told otherwise)."""
    config = client.images.get(image.image_id).attrs["Config"]
    assert config["Entrypoint"] == ["tini", "-g", "--"]
    command = list(config["Cmd"])
    assert command == ["jupyterhub-singleuser"]
    return command


def test_no_setuid_or_setgid_files(run_in_image: Runner) -> None:
    # As root inside, so no directory is hidden from find by permissions.
    code, output = run_in_image(
        ["sh", "-c", "find / -xdev -perm /6000 -type f -print; echo end"], user="0"
    )
    assert code == 0, output
    assert output.split() == ["end"]


def test_cannot_become_root(run_in_image: Runner, account: ContainerAccount) -> None:
    script = (
        "for tool in su sudo; do if command -v $tool; then echo found:$tool; fi; done;"
        "python3 -c 'import os; os.setuid(0)' 2>/dev/null && echo became-root;"
        "id -u"
    )
    code, output = run_in_image(["sh", "-c", script])
    assert code == 0, output
    assert output.split() == [str(account.uid)], output


def test_wheelhouse_is_not_in_the_final_image(
    notebook_image: BuiltImage, docker_engine: docker.DockerClient, run_in_image: Runner, repo
) -> None:
    history = docker_engine.images.get(notebook_image.image_id).history()
    created_by = "\n".join(layer.get("CreatedBy", "") for layer in history)
    assert "wheels/" not in created_by and "requirements.lock" not in created_by, created_by
    locked_files = {e.filename for e in read_lock(repo / "images/notebook/requirements.lock")}
    code, output = run_in_image(
        ["sh", "-c", "test ! -e /build && test ! -e /staging && find / -xdev -name '*.whl'"],
        user="0",
    )
    assert code == 0, output
    present = {line.rsplit("/", 1)[-1] for line in output.split()}
    assert not present & locked_files, sorted(present & locked_files)


def test_unknown_kind_is_refused(image_settings) -> None:
    with pytest.raises(ImageError, match="unknown image kind 'hub'"):
        build_image("hub", settings=image_settings)
