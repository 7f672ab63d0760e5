"""The administration pages as their users meet them: a real hub, Chromium, four people.

adam (administrator) creates a project and adds a member; sara (data steward) proposes a
grant of the prosecution service's convictions to it and cannot approve it herself; dora,
the prosecution service's data controller, approves it; adam approves an image after reading
its package list, and closes proj-b while bob's server runs on it: the hub stops the server,
the workspace is archived and removed, and the audit chain still verifies.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.hub.conftest import PASSWORD, Hub, run
from tests.support.browser import hub_login, screenshot
from trenv import audit
from trenv.registry import grants, images, projects
from trenv.store import dispose_engines, transaction
from trenv.store.models import GrantStatus, ProjectStatus

pytestmark = pytest.mark.timeout(600)
ADMIN = "/services/trenv/admin"


def _login(browser: Browser, hub: Hub, user: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    hub_login(page, hub.url, user, PASSWORD, hub.totp[user])
    return page


def _submit(page: Page, form: str) -> str:
    """Click the form's button; the text of the page the post redirected to."""
    page.click(f"{form} button[type=submit]")
    page.wait_for_load_state("networkidle")
    return " ".join(page.inner_text("main").split())


def _wait_for(hub: Hub, user: str, ready: bool, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        server = (hub.api("GET", f"/users/{user}").json().get("servers") or {}).get("")
        if bool(server and server.get("ready")) if ready else not server:
            return
        time.sleep(0.5)
    pytest.fail(f"{user}'s server did not {'start' if ready else 'stop'}")


@pytest.fixture(scope="module")
def bob_at_work(hub: Hub) -> Iterator[None]:
    reply = hub.spawn("bob", "proj-b")
    assert reply.status_code in (201, 202), reply.text
    _wait_for(hub, "bob", ready=True)
    run(hub.container("bob"), "open('/home/jovyan/work/model.py', 'w').write('fit = 1')")
    yield
    hub.stop("bob")


def test_create_project_and_add_a_member(hub: Hub, browser: Browser) -> None:
    page = _login(browser, hub, "adam")
    page.goto(f"{hub.url}{ADMIN}/projects")
    page.fill("input[name=slug]", "proj-new")
    page.fill("input[name=title]", "Sentencing and reoffending")
    page.fill("textarea[name=purpose]", "Does the length of a sentence change reoffending?")
    page.fill("input[name=end_date]", (dt.date.today() + dt.timedelta(days=180)).isoformat())
    page.select_option("select[name=policy]", "sacro")
    shown = _submit(page, "form[method=post][action$='/admin/projects']")
    assert "Project proj-new created." in shown and page.url.endswith("/admin/projects/proj-new")
    page.select_option("select[name=username]", "nina")
    page.select_option("select[name=role]", "lead")
    shown = _submit(page, "form[action$='/members']")
    assert "nina is a lead of proj-new." in shown
    screenshot(page, "admin-project")
    page.goto(f"{hub.url}{ADMIN}/people/nina")
    screenshot(page, "admin-person")
    page.goto(f"{hub.url}{ADMIN}/data")
    screenshot(page, "admin-data")
    page.context.close()
    # The new member finds the project in the hub's start form.
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{hub.url}/hub/login")
    screenshot(page, "researcher-login")
    hub_login(page, hub.url, "nina", PASSWORD, hub.totp["nina"])
    page.goto(f"{hub.url}/hub/spawn")
    assert "Sentencing and reoffending" in page.content()
    screenshot(page, "researcher-spawn")
    page.context.close()
    with transaction(hub.settings) as session:
        project = projects.get_project(session, "proj-new")
        assert [m.user.username for m in project.memberships] == ["nina"]
    dispose_engines()


def test_grant_proposed_by_the_steward_and_approved_by_the_controller(
    hub: Hub,
    browser: Browser,
) -> None:
    # A project of its own, so this test does not depend on the one before.
    with transaction(hub.settings) as session:
        projects.create_project(
            session, actor="operator:test", slug="proj-grant", title="Grant flow",
            end_date=dt.date.today() + dt.timedelta(days=90), policy_profile="sacro",
        )  # fmt: skip
    dispose_engines()
    page = _login(browser, hub, "sara")
    page.goto(f"{hub.url}{ADMIN}/grants")
    page.select_option("select[name=project]", "proj-grant")
    page.select_option("select[name=dataset]", "convictions@1")
    page.fill("input[name=columns]", "person, offence")
    shown = _submit(page, "form[method=post][action$='/admin/grants']")
    assert "proposed" in shown and "(not you)" in shown
    assert "proposed by you: another person approves" in shown
    assert page.locator("form[action$='/approve']").count() == 0
    screenshot(page, "admin-grants-proposed")
    page.context.close()

    page = _login(browser, hub, "dora")  # no hub role: the home page leads her to the grants
    page.goto(f"{hub.url}/services/trenv/")
    page.click(f"a[href='{ADMIN}/grants']")
    page.wait_for_load_state("networkidle")
    screenshot(page, "admin-grants-controller")
    shown = _submit(page, "form[action$='/approve']")
    assert "is in effect" in shown
    page.context.close()
    with transaction(hub.settings) as session:
        (grant,) = grants.list_grants(session, project="proj-grant")
        assert (grant.status, grant.proposed_by, grant.approved_by) == (
            GrantStatus.active, "sara", "dora")  # fmt: skip
        assert grant.columns == ["person", "offence"]
    dispose_engines()


def test_admin_reads_the_package_list_and_approves_an_image(
    hub: Hub,
    browser: Browser,
) -> None:
    with transaction(hub.settings) as session:
        built = images.get_image(session, "trenv/notebook:pytest")
        # The same bytes under a new name, recorded without labels: the page asks the engine.
        candidate = images.record_image(
            session, actor="operator:test", name="trenv/candidate", tag="1", digest=built.digest
        )
        candidate_id = candidate.id
    dispose_engines()
    page = _login(browser, hub, "adam")
    page.goto(f"{hub.url}{ADMIN}/images")
    page.click(f"a[href$='/admin/images/{candidate_id}']")
    page.wait_for_load_state("networkidle")
    text = " ".join(page.inner_text("main").split())
    assert "waiting for approval" in text and "pinned distributions" in text and "pandas" in text
    screenshot(page, "admin-image")
    shown = _submit(page, "form[action$='/approve']")
    assert "trenv/candidate:1 approved" in shown
    page.context.close()
    with transaction(hub.settings) as session:
        assert images.get_image(session, "trenv/candidate:1").approved_by == "adam"
    dispose_engines()


def test_close_a_project_with_a_running_server(
    hub: Hub,
    bob_at_work: None,
    browser: Browser,
) -> None:
    assert hub.settings.workspaces_dir is not None and hub.settings.retention_dir is not None
    workspace = hub.settings.workspaces_dir / "proj-b" / "bob"
    assert (workspace / "model.py").is_file()
    page = _login(browser, hub, "adam")
    page.goto(f"{hub.url}{ADMIN}/usage")
    usage = " ".join(page.inner_text("main").split())
    assert "bob proj-b" in usage and "ready" in usage
    screenshot(page, "admin-usage")
    page.goto(f"{hub.url}{ADMIN}/projects/proj-b")
    page.click("a[href$='/proj-b/close']")
    page.wait_for_load_state("networkidle")
    assert "cannot be undone" in page.inner_text("main")
    screenshot(page, "admin-close")
    page.fill("input[name=confirm]", "proj-b")
    started = time.monotonic()
    shown = _submit(page, "form[action$='/close']")
    took = time.monotonic() - started
    assert "project proj-b is closed" in shown and "servers stopped: bob" in shown, shown
    assert "archived to" in shown
    print(f"closure with one running server took {took:.1f} s")
    page.goto(f"{hub.url}{ADMIN}/audit?object=project:proj-b")
    assert "Chain intact" in page.inner_text("main")
    screenshot(page, "admin-audit")
    page.context.close()

    assert not (hub.api("GET", "/users/bob").json().get("servers") or {})
    assert not workspace.exists()
    (archive,) = (hub.settings.retention_dir / "proj-b").glob("*.tar.gz")
    assert archive.stat().st_size > 0
    # A new spawn is refused: the project is closed.
    reply = hub.spawn("bob", "proj-b")
    assert reply.status_code >= 400 or _refused_later(hub)
    with transaction(hub.settings) as session:
        assert projects.get_project(session, "proj-b").status == ProjectStatus.closed
        steps = [e.action for e in audit.events(session, action_prefix="project.close")]
        assert steps == ["project.close", "project.close.servers", "project.close.workspaces"]
        stopped = next(audit.events(session, action_prefix="project.close.servers"))
        assert json.loads(stopped.detail)["servers"]["bob"] in ("stopped", "stopping")
        assert audit.verify(session, hub.settings.audit_anchor).ok
    dispose_engines()


def _refused_later(hub: Hub) -> bool:
    """A spawn the hub accepted (202) fails in the spawner: the server never becomes ready."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        server = (hub.api("GET", "/users/bob").json().get("servers") or {}).get("")
        if not server:
            return True
        if server.get("ready"):
            return False
        time.sleep(0.5)
    return False
