"""A real JupyterHub with the trenv spawner on a real Docker engine, for the whole module.

The hub gets its own TRENV_HOME, ports, network and bridge names, so it never touches a
running demo. The notebook image is the one the image tests build (tag ``pytest``).
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pyotp
import pytest
import requests

from tests.support.net import free_port
from trenv.config import Settings
from trenv.hub.hubconfig import network_spec
from trenv.hub.network import remove_network
from trenv.hub.process import public_url, start_hub, stop_hub
from trenv.images import build_image
from trenv.images.engine import ensure_engine
from trenv.images.paths import repo_root
from trenv.registry import credentials, datasets, images, organisations, projects, users
from trenv.store import dispose_engines, transaction, upgrade
from trenv.store.models import Classification, GlobalRole, MemberRole

PASSWORD = "a long test passphrase"


@dataclass
class Hub:
    settings: Settings
    url: str
    token: str
    docker: docker.DockerClient
    totp: dict[str, str]

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=120, **kwargs
        )

    def spawn(self, user: str, project: str, **extra: str) -> requests.Response:
        self.api("POST", f"/users/{user}")  # 201 the first time, 409 afterwards
        return self.api("POST", f"/users/{user}/server", json={"project": project, **extra})

    def stop(self, user: str) -> None:
        self.api("DELETE", f"/users/{user}/server")

    def container(self, user: str) -> docker.models.containers.Container:
        return self.docker.containers.get(f"trenv-{self.settings.bridge_name}-{user}")

    def user_token(self, user: str) -> str:
        reply = self.api("POST", f"/users/{user}/tokens", json={"note": "test"})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["token"])


def _ensure_proxy() -> None:
    subprocess.run([str(repo_root() / "scripts" / "install-proxy.sh")], check=True)


@pytest.fixture(scope="session")
def notebook_image_id() -> str:
    client = ensure_engine()
    built = build_image(
        "notebook", settings=Settings(home=repo_root() / ".trenv"), tag="pytest", client=client
    )
    return built.image_id


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, notebook_image_id: str) -> Iterator[Hub]:
    _ensure_proxy()
    suffix = secrets.token_hex(2)
    home = tmp_path_factory.mktemp("hub-home")
    settings = Settings(
        home=home,
        hub_public_port=free_port(),
        hub_api_port=free_port(),
        web_api_port=free_port(),
        proxy_api_port=free_port(),
        network_name=f"trenv-test-{suffix}",
        bridge_name=f"brt-{suffix}",
        container_mem_limit="1G",
        container_pids_limit=256,
    )
    settings.ensure_dirs()
    upgrade(settings)
    totp = _populate(settings, notebook_image_id)
    dispose_engines()
    token = secrets.token_hex(32)
    client = ensure_engine()
    try:
        start_hub(settings, operator_token=token)
        yield Hub(settings, public_url(settings), token, client, totp)
    finally:
        stop_hub(settings)
        for container in client.containers.list(all=True, filters={"name": f"trenv-brt-{suffix}"}):
            container.remove(force=True)
        remove_network(client, network_spec(settings))


def _populate(settings: Settings, image_id: str) -> dict[str, str]:
    """rosa works on proj-a, bob on proj-b; old-project has ended; proj-u's image is not
    approved. nina (never running a server) is in proj-b, old-project and proj-u. chris and
    cleo are output checkers, members of no project. sara is a data steward and dora the
    data controller of the prosecution service ('om'), which supplies convictions@1."""
    op = "operator:test"
    totp: dict[str, str] = {}
    with transaction(settings) as session:
        for name in ("rosa", "bob", "nina", "adam", "chris", "cleo", "sara", "dora"):
            roles = {
                "adam": {GlobalRole.admin},
                "chris": {GlobalRole.checker},
                "cleo": {GlobalRole.checker},
                "sara": {GlobalRole.steward},
            }.get(name, set())
            users.add_user(session, actor=op, username=name, roles=roles)
            credentials.set_password(session, actor=op, username=name, password=PASSWORD)
            totp[name] = credentials.enrol_totp(session, actor=op, username=name)
        organisations.add_organisation(session, actor=op, slug="om", name="Openbaar Ministerie")
        organisations.add_controller(session, actor=op, slug="om", username="dora")
        datasets.register_dataset(
            session, actor=op, supplier="om", name="convictions", version="1",
            classification=Classification.special_category, row_count=1000, sha256="a" * 64,
            codebook={"columns": {"person": {}, "offence": {}, "sentence_days": {}}},
        )  # fmt: skip
        images.record_image(session, actor=op, name="trenv/notebook", tag="pytest", digest=image_id)
        images.approve_image(session, approver="adam", reference="trenv/notebook:pytest")
        images.record_image(session, actor=op, name="trenv/unapproved", tag="1", digest=image_id)
        end = dt.date.today() + dt.timedelta(days=30)
        for slug, member in (("proj-a", "rosa"), ("proj-b", "bob"), ("old-project", "rosa"),
                             ("proj-u", "rosa")):  # fmt: skip
            projects.create_project(
                session, actor=op, slug=slug, title=slug, end_date=end, policy_profile="sacro"
            )
            projects.add_member(
                session, actor=op, slug=slug, username=member, role=MemberRole.researcher
            )
            if slug != "proj-u":
                projects.set_image(session, actor=op, slug=slug, image_ref="trenv/notebook:pytest")
        for slug in ("proj-b", "old-project", "proj-u"):
            projects.add_member(
                session, actor=op, slug=slug, username="nina", role=MemberRole.researcher
            )
        # Time passes for old-project: it ended yesterday.
        old = projects.get_project(session, "old-project")
        old.start_date = dt.date.today() - dt.timedelta(days=400)
        old.end_date = dt.date.today() - dt.timedelta(days=1)
        unapproved = projects.get_project(session, "proj-u")
        unapproved.image = images.get_image(session, "trenv/unapproved:1")
    return totp


def run(container: docker.models.containers.Container, script: str) -> str:
    """Run a Python snippet inside the container as its own user (the dedicated container
    account, which exec uses by default); its output."""
    _, output = container.exec_run(["python3", "-c", script])
    return str(output.decode(errors="replace"))


def login_session(hub: Hub, username: str) -> requests.Session:
    """Log in through the hub's real login form: password and a fresh one-time code."""
    session = requests.Session()
    form = session.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = session.cookies.get("_xsrf") or ""
    reply = session.post(
        f"{hub.url}/hub/login?next=",
        data={
            "username": username,
            "password": PASSWORD,
            "otp": pyotp.TOTP(hub.totp[username]).now(),
            "_xsrf": xsrf,
        },
        timeout=60,
        allow_redirects=False,
    )
    assert form.status_code == 200 and reply.status_code == 302, reply.text[:500]
    return session
