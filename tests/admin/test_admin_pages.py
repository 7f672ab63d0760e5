"""The administration pages through FastAPI's TestClient, as admin, steward, controller and
researcher: every page renders for those allowed and is refused (403) to others, the forms
change the registry through the service layer, and four-eyes refusals come back on the page."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.admin.world import Tx, build, end_date_in
from trenv import audit
from trenv.admin.servers import RunningServer, StaticServers
from trenv.config import Settings
from trenv.registry import credentials, grants, images, projects, users
from trenv.store.models import GrantStatus, ProjectStatus
from trenv.web.app import create_app
from trenv.web.auth import StaticIdentity, WebUser
from trenv.web.deps import ADMIN, STEWARD

P = "/services/trenv/"
HTML = {"accept": "text/html"}
ACCESS = "access:services!service=trenv"


@dataclass
class Site:
    client: TestClient
    servers: StaticServers
    settings: Settings
    tx: Tx
    grant_id: int

    def get(self, path: str, who: str) -> httpx.Response:
        return self.client.get(P + path, headers={**HTML, "Authorization": f"token t-{who}"})

    def post(self, path: str, who: str, data: dict[str, object] | None = None) -> httpx.Response:
        return self.client.post(
            P + path, data=data or {}, follow_redirects=False,
            headers={**HTML, "Authorization": f"token t-{who}"},
        )  # fmt: skip

    def submit(self, path: str, who: str, data: dict[str, object] | None = None) -> str:
        """Post a form, follow its redirect, and return the visible text of the page."""
        reply = self.post(path, who, data)
        assert reply.status_code == 303, reply.text[:500]
        shown = self.client.get(
            reply.headers["location"], headers={**HTML, "Authorization": f"token t-{who}"}
        )
        assert shown.status_code == 200, shown.text[:500]
        return text_of(shown)


def text_of(reply: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", reply.text)).split())


@pytest.fixture
def site(tx: Tx, settings: Settings, tmp_path: Path) -> Iterator[Site]:
    grant_id = build(tx, settings, tmp_path)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    servers = StaticServers([RunningServer("rita", "reoffending", True, "", started, started)])
    people = {
        "adam": WebUser("adam", frozenset({ADMIN, ACCESS})),
        "stella": WebUser("stella", frozenset({STEWARD, ACCESS})),
        "carl": WebUser("carl", frozenset({ACCESS})),  # the supplier's data controller
        "rita": WebUser("rita", frozenset({ACCESS})),
    }
    identity = StaticIdentity(users={f"t-{name}": user for name, user in people.items()})
    with TestClient(create_app(settings, identity, servers)) as client:
        yield Site(client, servers, settings, tx, grant_id)


def _image_id(site: Site) -> int:
    with site.tx() as session:
        return images.get_image(session, "trenv/notebook:1").id


def _pages(site: Site) -> list[str]:
    return [
        "admin", "admin/projects", "admin/projects/reoffending",
        "admin/projects/reoffending/close", "admin/people", "admin/people/rita", "admin/data",
        "admin/data/datasets/sentences@1", "admin/grants", "admin/images",
        f"admin/images/{_image_id(site)}", "admin/usage", "admin/audit",
    ]  # fmt: skip


def test_every_page_renders_for_an_admin_and_is_refused_to_a_researcher(site: Site) -> None:
    for path in _pages(site):
        shown = site.get(path, "adam")
        assert shown.status_code == 200, (path, shown.text[:300])
        assert ("<h1>" in shown.text and "Administration" in shown.text) or path == "admin"
        refused = site.get(path, "rita")
        assert refused.status_code == 403, path
        assert "Not allowed" in refused.text
    home = site.get("", "adam")
    assert f'href="{P}admin"' in home.text
    assert f'href="{P}admin"' not in site.get("", "rita").text


def test_a_steward_sees_data_and_grants_but_not_people_or_project_forms(site: Site) -> None:
    for path in ("admin", "admin/projects", "admin/data", "admin/grants", "admin/images",
                 "admin/usage", "admin/audit", "admin/projects/reoffending"):  # fmt: skip
        assert site.get(path, "stella").status_code == 200, path
    assert site.get("admin/people", "stella").status_code == 403
    assert f'href="{P}admin/people"' not in site.get("admin", "stella").text
    assert f'href="{P}admin/people"' in site.get("admin", "adam").text
    assert site.get("admin/projects/reoffending/close", "stella").status_code == 403
    project = site.get("admin/projects/reoffending", "stella").text
    assert "Add member" not in project and "Close project" not in project
    assert site.post("admin/projects", "stella", {"slug": "x-y"}).status_code == 403


def test_create_project_add_member_set_budget_and_edit(site: Site) -> None:
    shown = site.submit("admin/projects", "adam", {
        "slug": "recidivism-2027", "title": "Recidivism <script>alert(1)</script>",
        "purpose": "Why people reoffend", "end_date": end_date_in(200).isoformat(),
        "policy": "sacro",
    })  # fmt: skip
    assert "Project recidivism-2027 created." in shown
    page = site.get("admin/projects/recidivism-2027", "adam")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    shown = site.submit("admin/projects/recidivism-2027/members", "adam",
                        {"username": "nora", "role": "lead"})  # fmt: skip
    assert "nora is a lead of recidivism-2027." in shown
    shown = site.submit("admin/projects/recidivism-2027/budgets", "adam",
                        {"dataset": "sentences", "rho": "0.5"})  # fmt: skip
    assert "may spend rho 0.5 on sentences" in shown
    new_end = end_date_in(400)
    shown = site.submit("admin/projects/recidivism-2027/edit", "adam", {
        "title": "Recidivism", "purpose": "", "legal_basis": "WJSG art. 15",
        "end_date": new_end.isoformat(), "policy": "trenv-default",
    })  # fmt: skip
    assert "Project updated." in shown
    shown = site.submit("admin/projects/recidivism-2027/image", "adam",
                        {"image": "trenv/notebook:1"})  # fmt: skip
    assert "now start on trenv/notebook:1" in shown
    shown = site.submit("admin/projects/recidivism-2027/members/remove", "adam",
                        {"username": "nora"})  # fmt: skip
    assert "nora removed" in shown
    with site.tx() as session:
        project = projects.get_project(session, "recidivism-2027")
        assert (project.end_date, project.policy_profile) == (new_end, "trenv-default")
        assert project.legal_basis == "WJSG art. 15" and project.image is not None
        actions = [e.action for e in audit.events(session) if e.actor == "adam"]
    for action in ("project.create", "project.member.add", "privacy.budget.set",
                   "project.update", "project.image", "project.member.remove"):  # fmt: skip
        assert action in actions
    # A refusal comes back on the page and changes nothing.
    shown = site.submit("admin/projects", "adam",
                        {"slug": "Bad Slug", "title": "x", "end_date": "2020-01-01"})  # fmt: skip
    assert "is not a valid slug" in shown


def test_four_eyes_on_the_grants_page(site: Site) -> None:
    shown = site.submit("admin/grants", "stella",
                        {"project": "reoffending", "dataset": "convictions@2026-10",
                         "columns": "person, offence"})  # fmt: skip
    assert "proposed" in shown and "(not you)" in shown
    with site.tx() as session:
        grant = next(g for g in grants.list_grants(session) if g.status == GrantStatus.proposed)
        grant_id = grant.id
    page = site.get("admin/grants", "stella").text
    assert "proposed by you: another person approves" in page
    # The proposer cannot approve, even by posting the form herself: refused on the page.
    shown = site.submit(f"admin/grants/{grant_id}/approve", "stella")
    assert "cannot also approve" in shown
    # An administrator who is not the supplier's controller cannot either.
    shown = site.submit(f"admin/grants/{grant_id}/approve", "adam")
    assert "not a data controller of 'om'" in shown
    # A researcher is refused outright.
    assert site.post(f"admin/grants/{grant_id}/approve", "rita").status_code == 403
    assert site.get("admin/grants", "rita").status_code == 403
    # The controller (no hub scope) finds the grant from the home page and approves.
    assert f'href="{P}admin/grants"' in site.get("", "carl").text
    page = site.get("admin/grants", "carl").text
    assert f"admin/grants/{grant_id}/approve" in page
    shown = site.submit(f"admin/grants/{grant_id}/approve", "carl")
    assert f"Grant #{grant_id} is in effect" in shown
    with site.tx() as session:
        grant = grants.get_grant(session, grant_id)
        assert (grant.status, grant.proposed_by, grant.approved_by) == (
            GrantStatus.active, "stella", "carl")  # fmt: skip


def test_grant_column_rules_on_the_grants_page(site: Site) -> None:
    """The steward's form takes columns to drop and to coarsen; rules that do not fit the
    codebook come back as a notice and nothing is proposed; the controller sees the rules."""
    form = {"project": "reoffending", "dataset": "convictions@2026-10"}
    with site.tx() as session:
        before = len(grants.list_grants(session))
    shown = site.submit("admin/grants", "stella", {**form, "coarsen": "sentence_days=week"})
    assert "unknown coarsening 'week'" in shown and "COLUMN=bands:E1,E2" in shown
    # This codebook gives no types, so nothing can be coarsened (only dropped).
    shown = site.submit("admin/grants", "stella",
                        {**form, "coarsen": "sentence_days=bands:30,365"})  # fmt: skip
    assert "cannot coarsen column sentence_days" in shown and "not given" in shown
    shown = site.submit("admin/grants", "stella", {**form, "drop": "offence, nowhere"})
    assert "nowhere, which dataset convictions@2026-10 does not have" in shown
    with site.tx() as session:
        assert len(grants.list_grants(session)) == before
    shown = site.submit("admin/grants", "stella", {**form, "drop": "offence"})
    assert "proposed" in shown
    with site.tx() as session:
        grant = grants.list_grants(session)[-1]
        assert grant.column_rules == {"drop": ["offence"]}
    assert "drop offence" in text_of(site.get("admin/grants", "carl"))


def test_revocation_needs_a_reason_and_withholds_the_view(site: Site) -> None:
    shown = site.submit(f"admin/grants/{site.grant_id}/revoke", "carl", {"reason": ""})
    assert "needs a reason" in shown
    shown = site.submit(f"admin/grants/{site.grant_id}/revoke", "carl",
                        {"reason": "consent withdrawn"})  # fmt: skip
    assert "revoked" in shown
    shown = site.submit("admin/projects/reoffending/publish", "stella")
    assert "view is withdrawn" in shown
    assert not (site.settings.projects_dir / "reoffending" / "data").exists()


def test_people_roles_mfa_and_deactivation(site: Site) -> None:
    page = site.get("admin/people", "adam")
    assert "rita" in page.text and "running" in text_of(page)
    shown = site.submit("admin/people", "adam",
                        {"username": "vera", "full_name": "Vera", "role": ["checker"]})  # fmt: skip
    assert "vera added" in shown
    shown = site.submit("admin/people/vera/roles", "adam", {"role": ["checker", "steward"]})
    assert "vera now has: checker, steward" in shown
    reply = site.post("admin/people/rita/mfa", "adam")
    assert reply.status_code == 200
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', reply.text)
    assert secret is not None and "otpauth://totp/" in reply.text
    with site.tx() as session:
        assert credentials.mfa_enrolled(session, "rita")
    shown = site.submit("admin/people/rita/active", "adam", {"active": "no"})
    assert "rita is deactivated; their server: stopped." in shown
    assert site.servers.stopped == ["rita"]
    shown = site.submit("admin/people/rita/active", "adam", {"active": "yes"})
    assert "rita is active again." in shown
    with site.tx() as session:
        assert users.get_user(session, "rita").active
        actions = [e.action for e in audit.events(session)]
    for action in ("user.add", "user.roles", "user.mfa.enrol", "user.deactivate",
                   "server.stop.request", "user.activate"):  # fmt: skip
        assert action in actions


def test_images_approve_retire_and_must_move(site: Site) -> None:
    with site.tx() as session:
        image = images.record_image(session, actor="adam", name="trenv/notebook", tag="2",
                                    digest="sha256:" + "e" * 64,
                                    labels={"org.trenv.lock-sha256": "f" * 64})  # fmt: skip
        new_id = image.id
    page = site.get(f"admin/images/{new_id}", "adam")
    assert "waiting for approval" in page.text and "not kept on this host" in page.text
    assert "Approve image" not in site.get(f"admin/images/{new_id}", "stella").text
    assert site.post(f"admin/images/{new_id}/approve", "stella").status_code == 403
    shown = site.submit(f"admin/images/{new_id}/approve", "adam")
    assert "trenv/notebook:2 approved" in shown
    shown = site.submit(f"admin/images/{_image_id(site)}/retire", "adam",
                        {"reason": "CVE in a dependency"})  # fmt: skip
    assert "Must move to another image: reoffending." in shown
    assert "must move" in site.get("admin/images", "adam").text
    assert "must move" in text_of(site.get("admin", "adam"))


def test_image_package_list_from_the_lock_file(site: Site) -> None:
    from trenv.hashing import file_sha256
    from trenv.images.paths import repo_root

    lock = repo_root() / "images" / "notebook" / "requirements.lock"
    with site.tx() as session:
        labels = {"org.trenv.lock-sha256": file_sha256(lock)}
        image = images.record_image(session, actor="adam", name="trenv/notebook", tag="3",
                                    digest="sha256:" + "a" * 64, labels=labels)  # fmt: skip
        image_id = image.id
    page = text_of(site.get(f"admin/images/{image_id}", "adam"))
    assert "pinned distributions" in page and "pandas" in page


def test_usage_lists_running_servers_and_stops_one(site: Site) -> None:
    with site.tx() as session:
        spawned = {"project": "reoffending", "image": "trenv/notebook:1",
                   "datasets": ["sentences@1"]}  # fmt: skip
        audit.record(session, actor="rita", action="server.spawn", object_type="server",
                     object_id="rita", detail=spawned)  # fmt: skip
    page = text_of(site.get("admin/usage", "adam"))
    assert "rita reoffending" in page and "sentences@1" in page and "3.0 h" in page
    assert "4G memory" in page
    project = text_of(site.get("admin/projects/reoffending", "stella"))
    assert "sentences@1" in project and "3.0 h" in project
    assert "Stop" not in site.get("admin/usage", "stella").text
    assert site.post("admin/usage/stop", "stella", {"username": "rita"}).status_code == 403
    shown = site.submit("admin/usage/stop", "adam", {"username": "rita"})
    assert "rita's server: stopped." in shown and site.servers.stopped == ["rita"]
    assert "No server is running." in shown


def test_audit_page_filters_and_verifies(site: Site) -> None:
    page = text_of(site.get("admin/audit?action=grant.", "adam"))
    assert "Chain intact" in page
    rows = re.findall(
        r"<code>([a-z.]+)</code></td>", site.get("admin/audit?action=grant.", "adam").text
    )
    assert rows and all(r.startswith("grant.") for r in rows)
    by_actor = site.get("admin/audit?actor=carl", "adam").text
    assert re.findall(r"<td>carl</td>", by_actor) and "<td>stella</td>" not in by_actor
    trail = text_of(site.get("admin/audit?object=project:reoffending", "adam"))
    assert "project.create" in trail


def test_closing_a_project_needs_its_name_typed(site: Site) -> None:
    assert site.settings.workspaces_dir is not None
    work = site.settings.workspaces_dir / "reoffending" / "rita"
    work.mkdir(parents=True)
    (work / "analysis.py").write_text("print(1)")
    confirm = text_of(site.get("admin/projects/reoffending/close", "adam"))
    assert "cannot be undone" in confirm and "rita" in confirm
    shown = site.submit("admin/projects/reoffending/close", "adam", {"confirm": "reoff"})
    assert "was not typed to confirm" in shown
    shown = site.submit("admin/projects/reoffending/close", "adam", {"confirm": "reoffending"})
    assert "project reoffending is closed" in shown and "servers stopped: rita" in shown
    assert "archived to" in shown and not work.exists()
    with site.tx() as session:
        assert projects.get_project(session, "reoffending").status == ProjectStatus.closed
        assert audit.verify(session, site.settings.audit_anchor).ok
    page = site.get("admin/projects/reoffending", "adam").text
    assert "Archived workspaces" in page and "Add member" not in page
