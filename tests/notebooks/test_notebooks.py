"""The research notebooks, executed inside the real notebook image, on the demo installation.

One module-scoped installation is set up the way `make demo` sets it up
(trenv.demo.installation seed, trenv.demo.data: synth -> ingest -> link -> grants by steward
and controller -> DP budgets -> publish; the notebooks copied into rosa's workspace), but in a
temporary TRENV_HOME with free ports and its own network, on the image the other hub tests use.
rosa's server is spawned through the hub API; each notebook runs in it with nbclient against
the published Parquet under /data, and must finish without a cell error and with an export
request none of whose files the airlock's server-side checks fail, nor the notebook's own
checks flag."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest
from playwright.sync_api import Browser, Page

from tests.hub.conftest import _ensure_proxy, notebook_image_id  # noqa: F401  (fixture)
from tests.support.browser import hub_login, screenshot
from tests.support.net import free_port
from trenv.airlock.states import REVIEWABLE
from trenv.config import Settings
from trenv.demo import data as demo_data
from trenv.demo import installation as demo
from trenv.demo.notebooks import (
    FOLDER,
    NOTEBOOKS,
    HubOperator,
    NotebookRun,
    copy_to_workspace,
    ensure_waiting_request,
    run_notebook,
)
from trenv.hub.account import container_account
from trenv.hub.hubconfig import network_spec
from trenv.hub.network import remove_network
from trenv.hub.process import public_url, start_hub, stop_hub
from trenv.images.engine import ensure_engine
from trenv.layout import workspace_dir
from trenv.store import dispose_engines, transaction, upgrade
from trenv.store.models import ExportRequest

pytestmark = pytest.mark.timeout(900)

PERSONS = 100_000  # about 10 s to prepare; enough people for tables that are not all withheld
USER = "rosa"


@dataclass
class Demo:
    settings: Settings
    hub: HubOperator
    docker: docker.DockerClient
    prepared: demo_data.Prepared


@pytest.fixture(scope="module")
def installation(
    tmp_path_factory: pytest.TempPathFactory,
    notebook_image_id: str,  # noqa: F811
) -> Iterator[Demo]:
    _ensure_proxy()
    suffix = secrets.token_hex(2)
    settings = Settings(
        home=tmp_path_factory.mktemp("demo-home"),
        hub_public_port=free_port(),
        hub_api_port=free_port(),
        web_api_port=free_port(),
        proxy_api_port=free_port(),
        network_name=f"trenv-test-{suffix}",
        bridge_name=f"brt-{suffix}",
        container_mem_limit="2G",
        container_pids_limit=256,
    )
    settings.ensure_dirs()
    upgrade(settings)
    with transaction(settings) as session:
        demo.seed(session)
        demo.use_image(session, "trenv/notebook:pytest", notebook_image_id, {})
    started = time.monotonic()
    prepared = demo_data.prepare(settings, demo.PROJECT, persons=PERSONS)
    print(f"demo data prepared in {time.monotonic() - started:.1f} s")
    copy_to_workspace(settings, demo.PROJECT, USER)
    dispose_engines()
    token = secrets.token_hex(32)
    client = ensure_engine()
    try:
        start_hub(settings, operator_token=token)
        yield Demo(settings, HubOperator(public_url(settings), token), client, prepared)
    finally:
        stop_hub(settings)
        for container in client.containers.list(all=True, filters={"name": f"trenv-brt-{suffix}"}):
            container.remove(force=True)
        remove_network(client, network_spec(settings))


@pytest.fixture(scope="module")
def rosa_server(installation: Demo) -> Iterator[Demo]:
    installation.hub.start(USER, demo.PROJECT)
    yield installation
    installation.hub.stop(USER)


def problems_of(settings: Settings, run: NotebookRun) -> list[str]:
    """Every file of the notebook's request that the airlock fails, or whose findings carry
    a flag of the notebook's own checks (a checker would have to confirm it)."""
    problems = []
    with transaction(settings) as session:
        for request_id in run.requests:
            request = session.get(ExportRequest, request_id)
            assert request is not None and request.state in REVIEWABLE, request_id
            assert request.files, f"request #{request_id} has no files"
            for f in request.files:
                findings = f.checks.get("findings", [])
                flagged = [
                    x["message"]
                    for x in findings
                    if x["rule_id"].startswith("notebook-") and x["status"] != "pass"
                ]
                if f.check_status == "fail" or flagged:
                    bad = [x["message"] for x in findings if x["status"] == "fail"] + flagged
                    problems.append(f"{f.path}: {f.check_status}: {bad}")
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_in_the_container_and_its_outputs_pass_the_airlock(
    rosa_server: Demo, notebook: str
) -> None:
    run = run_notebook(rosa_server.docker, rosa_server.settings, USER, notebook)
    print(f"{notebook}: {run.seconds:.1f} s, requests {run.requests}")
    assert run.error is None, run.error
    assert len(run.requests) == 1, "each notebook ends in one export request"
    assert problems_of(rosa_server.settings, run) == []
    assert run.seconds < 120


def test_the_demo_state_a_checker_finds(installation: Demo) -> None:
    settings = installation.settings
    assert installation.prepared.datasets == sorted(demo_data.granted_references())
    # Set up again: nothing to do (make demo can be re-run).
    again = demo_data.prepare(settings, demo.PROJECT, persons=PERSONS)
    assert again.created == []
    folder = workspace_dir(settings, demo.PROJECT, USER) / FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(NOTEBOOKS)
    uid = container_account(settings).uid  # the dedicated account, not a person's 1000
    assert {p.stat().st_uid for p in folder.iterdir()} == {uid} and uid != 1000
    # A request waiting for the checkers (made by notebook 1 unless one already waits).
    request_id, _ = ensure_waiting_request(
        settings, installation.hub, installation.docker, demo.PROJECT, USER
    )
    again_id, created = ensure_waiting_request(
        settings, installation.hub, installation.docker, demo.PROJECT, USER
    )
    assert (again_id, created) == (request_id, False)
    with transaction(settings) as session:
        request = session.get(ExportRequest, request_id)
        assert request is not None and request.state in REVIEWABLE
        assert request.requester == USER and request.project.slug == demo.PROJECT


def test_walk_the_demo_in_the_browser_as_researcher_checker_and_admin(
    installation: Demo,
    browser: Browser,
) -> None:
    """The demo as its three kinds of users meet it, logging in through the hub's form."""
    settings = installation.settings
    request_id, _ = ensure_waiting_request(
        settings, installation.hub, installation.docker, demo.PROJECT, USER
    )
    with transaction(settings) as session:
        logins = demo.provision_logins(session, settings.home / "credentials.json")["users"]
        request = session.get(ExportRequest, request_id)
        assert request is not None
        title = request.title
    dispose_engines()
    url = public_url(settings)

    def login(user: str) -> Page:
        page = browser.new_context().new_page()
        hub_login(page, url, user, logins[user]["password"], logins[user]["totp_secret"])
        return page

    researcher = login(USER)
    researcher.goto(f"{url}/services/trenv/requests")
    assert title in researcher.content()
    screenshot(researcher, "demo-researcher-requests")
    researcher.context.close()

    checker = login("chris")
    checker.goto(f"{url}/services/trenv/queue")
    checker.click(f"a[href$='/requests/{request_id}']")
    checker.wait_for_load_state("networkidle")
    page = checker.content()
    assert title in page and "Record vote" in page and "outputs/" in page
    screenshot(checker, "demo-checker-request")
    checker.context.close()

    admin = login("adam")
    admin.goto(f"{url}/services/trenv/admin/projects/{demo.PROJECT}")
    page = admin.content()
    assert demo.PROJECT in page and title in page
    assert all(ref.split("@")[0] in page for ref in demo_data.granted_references())
    screenshot(admin, "demo-admin-project")
    admin.context.close()
