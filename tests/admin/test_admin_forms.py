"""The admin forms read through pydantic models (trenv/web/pages/admin/forms.py) behave as the
hand-read forms did: a malformed date, number or choice, or a field left out, comes back as
a notice on the page (a 303 and a flash, never FastAPI's 400/422), nothing is written, and
text is stripped."""

from __future__ import annotations

import pytest

from tests.admin.test_admin_pages import Site, site, text_of  # noqa: F401  (site: a fixture)
from tests.admin.world import end_date_in
from trenv import audit
from trenv.layout import retention_project_dir
from trenv.registry import organisations, projects

END = end_date_in(200).isoformat()


@pytest.fixture
def admin(site: Site) -> Site:  # noqa: F811  (the fixture imported above)
    """The site of test_admin_pages (its people, project and grant), under another name."""
    return site


def _events(admin: Site) -> int:
    with admin.tx() as session:
        return sum(1 for _ in audit.events(session))


@pytest.mark.parametrize(
    ("path", "who", "form", "notice"),
    [
        ("admin/projects", "adam", {"slug": "p-one", "title": "T"}, "a project needs an end date."),
        ("admin/projects", "adam", {"slug": "p-one", "title": "T", "end_date": "soon"},
         "end date 'soon' is not a date. Write it as YYYY-MM-DD."),
        ("admin/projects", "adam",
         {"slug": "p-one", "title": "T", "end_date": END, "start_date": "2026-13-01"},
         "start date '2026-13-01' is not a date."),
        ("admin/projects/reoffending/edit", "adam", {"title": "T", "end_date": "31-12-2030"},
         "end date '31-12-2030' is not a date."),
        ("admin/grants", "stella",
         {"project": "reoffending", "dataset": "convictions@2026-10", "expires_on": "never"},
         "expiry date 'never' is not a date."),
        ("admin/projects/reoffending/budgets", "adam", {"dataset": "sentences", "rho": "lots"},
         "rho 'lots' is not a number. Write it like 0.5."),
        ("admin/projects/reoffending/budgets", "adam", {"rho": "0.5"}, "no dataset named."),
        ("admin/projects/reoffending/members", "adam", {"username": "nora", "role": "boss"},
         "unknown member role 'boss'. Use researcher or lead."),
        ("admin/people", "adam", {"username": "vera", "role": ["checker", "root"]},
         "unknown role 'root'."),
        ("admin/grants/1/revoke", "carl", {}, "a revocation needs a reason."),
        ("admin/projects/reoffending/close", "adam", {}, "was not typed to confirm"),
    ],
)  # fmt: skip
def test_a_malformed_field_comes_back_as_a_notice_and_writes_nothing(
    admin: Site, path: str, who: str, form: dict[str, object], notice: str
) -> None:
    before = _events(admin)
    reply = admin.post(path, who, form)
    assert reply.status_code == 303, reply.text[:300]
    shown = admin.submit(path, who, form)
    assert notice in shown
    assert _events(admin) == before


def test_text_fields_are_stripped_and_missing_ones_are_empty(admin: Site) -> None:
    shown = admin.submit("admin/data/organisations", "adam", {"slug": "  nfi \t", "name": " NFI "})
    assert "Organisation nfi added." in shown
    with admin.tx() as session:
        assert organisations.get_organisation(session, "nfi").name == "NFI"
    assert "vera added." in admin.submit("admin/people", "adam", {"username": " vera "})
    shown = admin.submit("admin/projects/reoffending/members", "adam", {"username": "vera "})
    assert "vera is a researcher of reoffending." in shown  # no role given: researcher
    with admin.tx() as session:
        project = projects.get_project(session, "reoffending")
        assert "vera" in {m.user.username for m in project.memberships}


def test_the_close_page_names_the_retention_directory(admin: Site) -> None:
    shown = text_of(admin.get("admin/projects/reoffending/close", "adam"))
    assert f"archived to {retention_project_dir(admin.settings, 'reoffending')}/ and" in shown
