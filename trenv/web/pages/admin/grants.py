"""Grants of datasets to projects, with the four-eyes rule of :mod:`trenv.registry.grants`.

A steward or administrator proposes; a data controller of the supplier, another person,
approves; the proposer can never approve. The page offers the buttons, the registry decides:
a refusal comes back as a notice on this page and nothing is written.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from trenv.errors import Forbidden, Invalid
from trenv.registry import datasets, grants, projects
from trenv.registry.grant_rules import parse_rules, rules_from_text
from trenv.store.models import Grant, GrantStatus, ProjectStatus
from trenv.web.auth import WebUser
from trenv.web.deps import CurrentUser, DbSession
from trenv.web.flash import act, page, url
from trenv.web.pages.admin.common import Governance, controlled_suppliers, is_governance
from trenv.web.pages.admin.forms import GrantForm, ReasonForm

router = APIRouter(include_in_schema=False)
STATUSES = [s.value for s in GrantStatus]


def _visible_grants(session: Session, user: WebUser) -> tuple[list[Grant], list[int]]:
    """Stewards and admins see every grant; a data controller those of their suppliers."""
    controls = controlled_suppliers(session, user.name)
    every = grants.list_grants(session)
    if is_governance(user):
        return every, controls
    if not controls:
        raise Forbidden(
            f"{user.name!r} is not a steward, administrator or data controller.",
            "Grants are managed by stewards and approved by the suppliers' data controllers.",
        )
    return [g for g in every if g.dataset.supplier_id in controls], controls


@router.get("/admin/grants", response_class=HTMLResponse)
def grant_list(
    request: Request,
    user: CurrentUser,
    session: DbSession,
    project: str = "",
    status: str = "",
) -> Response:
    shown, controls = _visible_grants(session, user)
    if project:
        shown = [g for g in shown if g.project.slug == project]
    if status in STATUSES:
        shown = [g for g in shown if g.status.value == status]
    return page(
        request,
        "admin/grants.html",
        {
            "title": "Data grants",
            "grants": list(reversed(shown)),
            "controls": controls,
            "may_propose": is_governance(user),
            "projects": [
                p.slug for p in projects.list_projects(session) if p.status == ProjectStatus.active
            ],
            "datasets": [
                d.reference
                for d in datasets.list_datasets(session)
                if d.status.value == "available"
            ],
            "rules": {g.id: parse_rules(g.column_rules).describe() for g in shown},
            "filters": {"project": project, "status": status},
            "statuses": STATUSES,
        },
    )


@router.post("/admin/grants")
def grant_propose(
    request: Request, user: Governance, session: DbSession, form: Annotated[GrantForm, Form()]
) -> Response:
    back = url(request, "admin/grants")

    def action() -> str:
        columns = form.column_list()
        rules = rules_from_text(form.drop, form.coarsen.splitlines())
        grant = grants.propose_grant(
            session,
            proposer=user.name,
            project=form.project,
            dataset=form.dataset,
            columns=columns,
            expires_on=form.expires(),
            rules=rules,
        )
        return (
            f"Grant #{grant.id} proposed. It takes effect once a data controller of "
            f"{grant.dataset.supplier.slug} (not you) approves it."
        )

    return act(request, session, action, back, back)


@router.post("/admin/grants/{grant_id}/approve")
def grant_approve(
    request: Request, grant_id: int, user: CurrentUser, session: DbSession
) -> Response:
    back = url(request, "admin/grants")
    _visible_grants(session, user)  # 403 for people who have no business here at all

    def action() -> str:
        grant = grants.approve_grant(session, approver=user.name, grant_id=grant_id)
        return (
            f"Grant #{grant_id} is in effect: {grant.project.slug} may use "
            f"{grant.dataset.reference} once the data is published for it."
        )

    return act(request, session, action, back, back)


@router.post("/admin/grants/{grant_id}/revoke")
def grant_revoke(
    request: Request,
    grant_id: int,
    user: CurrentUser,
    session: DbSession,
    form: Annotated[ReasonForm, Form()],
) -> Response:
    back = url(request, "admin/grants")
    _visible_grants(session, user)

    def action() -> str:
        reason = form.reason
        if not reason:
            raise Invalid("a revocation needs a reason.", "Say why, for the audit trail.")
        grant = grants.revoke_grant(session, actor=user.name, grant_id=grant_id, reason=reason)
        return (
            f"Grant #{grant_id} revoked. No server of {grant.project.slug} starts with its "
            "current data view until the view is published again without it."
        )

    return act(request, session, action, back, back)
