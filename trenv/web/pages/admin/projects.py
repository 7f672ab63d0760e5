"""Projects: the list, creating one, and a project's page with its members, image, budgets,
data, servers, export requests and audit trail; closing it after a confirmation."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.admin import auditlog, usage
from trenv.admin.closure import close_project
from trenv.admin.retention import archives_of
from trenv.admin.servers import project_servers
from trenv.disclosure.policy import available_policies
from trenv.errors import Invalid, TrenvError
from trenv.layout import project_workspaces_dir, retention_project_dir
from trenv.privacy import ledger
from trenv.registry import grants, images, projects, users
from trenv.store.engine import transaction
from trenv.store.models import ExportRequest, MemberRole
from trenv.vault import service as vault
from trenv.web.deps import Admin, AppSettings, DbSession
from trenv.web.flash import act, page, redirect, url
from trenv.web.pages.admin.common import AppServers, Governance, is_admin, running_or_problem
from trenv.web.pages.admin.forms import (
    BudgetForm,
    CloseForm,
    ImageForm,
    MemberForm,
    ProjectEditForm,
    ProjectForm,
    UsernameForm,
)

router = APIRouter(include_in_schema=False)


def _project_url(request: Request, slug: str) -> str:
    return url(request, f"admin/projects/{quote(slug)}")


@router.get("/admin/projects", response_class=HTMLResponse)
def project_list(request: Request, user: Governance, session: DbSession) -> Response:
    return page(
        request,
        "admin/projects.html",
        {
            "title": "Projects",
            "projects": projects.list_projects(session),
            "policies": available_policies(),
            "can_edit": is_admin(user),
        },
    )


@router.post("/admin/projects")
def project_create(
    request: Request,
    user: Admin,
    session: DbSession,
    settings: AppSettings,
    form: Annotated[ProjectForm, Form()],
) -> Response:
    slug = form.slug

    def action() -> str:
        end_date = form.required_end()
        projects.create_project(
            session,
            actor=user.name,
            slug=slug,
            title=form.title,
            purpose=form.purpose,
            legal_basis=form.legal_basis,
            end_date=end_date,
            start_date=form.start(),
            policy_profile=form.policy or settings.default_policy_profile,
        )
        return f"Project {slug} created."

    back = url(request, "admin/projects")
    response = act(request, session, action, back, back)
    if response.headers["location"] == back and _created(session, slug):
        response.headers["location"] = _project_url(request, slug)
    return response


def _created(session: Session, slug: str) -> bool:
    try:
        projects.get_project(session, slug)
    except Exception:  # rolled back or never created
        return False
    return True


@router.get("/admin/projects/{slug}", response_class=HTMLResponse)
def project_page(
    request: Request,
    slug: str,
    user: Governance,
    session: DbSession,
    settings: AppSettings,
    servers: AppServers,
) -> Response:
    project = projects.get_project(session, slug)
    running, hub_problem = running_or_problem(servers)
    requests = session.scalars(
        select(ExportRequest)
        .where(ExportRequest.project_id == project.id)
        .order_by(ExportRequest.id.desc())
    )
    context: dict[str, Any] = {
        "title": f"Project {slug}",
        "project": project,
        "grants": grants.list_grants(session, project=slug),
        "published": usage.published(settings, slug),
        "budgets": ledger.statuses(session, project=slug),
        "servers": usage.server_rows(session, settings, project_servers(running, slug)),
        "hub_problem": hub_problem,
        "spawns": usage.spawns(session, project=slug, limit=50),
        "requests": list(requests),
        "trail": auditlog.project_trail(session, project, limit=100),
        "detail_text": auditlog.detail_text,
        "archives": archives_of(settings, slug),
        "images": [i for i in images.list_images(session) if i.approved and not i.retired],
        "people": [u for u in users.list_users(session) if u.active],
        "policies": available_policies(),
        "member_roles": [r.value for r in MemberRole],
        "can_edit": is_admin(user),
    }
    return page(request, "admin/project.html", context)


@router.post("/admin/projects/{slug}/edit")
def project_edit(
    request: Request,
    slug: str,
    user: Admin,
    session: DbSession,
    form: Annotated[ProjectEditForm, Form()],
) -> Response:
    back = _project_url(request, slug)

    def action() -> str:
        projects.update_project(
            session,
            actor=user.name,
            slug=slug,
            title=form.title,
            purpose=form.purpose,
            legal_basis=form.legal_basis,
            end_date=form.end(),
            policy_profile=form.policy or None,
        )
        return "Project updated."

    return act(request, session, action, back, back)


@router.post("/admin/projects/{slug}/image")
def project_image(
    request: Request, slug: str, user: Admin, session: DbSession, form: Annotated[ImageForm, Form()]
) -> Response:
    back = _project_url(request, slug)

    def action() -> str:
        image = form.image
        projects.set_image(session, actor=user.name, slug=slug, image_ref=image)
        return f"The project's servers now start on {image}."

    return act(request, session, action, back, back)


@router.post("/admin/projects/{slug}/members")
def member_add(
    request: Request,
    slug: str,
    user: Admin,
    session: DbSession,
    form: Annotated[MemberForm, Form()],
) -> Response:
    back = _project_url(request, slug)

    def action() -> str:
        name, role = form.username, form.member_role()
        projects.add_member(session, actor=user.name, slug=slug, username=name, role=role)
        return f"{name} is a {role.value} of {slug}."

    return act(request, session, action, back, back)


@router.post("/admin/projects/{slug}/members/remove")
def member_remove(
    request: Request,
    slug: str,
    user: Admin,
    session: DbSession,
    form: Annotated[UsernameForm, Form()],
) -> Response:
    back = _project_url(request, slug)

    def action() -> str:
        name = form.username
        projects.remove_member(session, actor=user.name, slug=slug, username=name)
        return f"{name} removed from {slug}."

    return act(request, session, action, back, back)


@router.post("/admin/projects/{slug}/budgets")
def budget_set(
    request: Request,
    slug: str,
    user: Admin,
    session: DbSession,
    form: Annotated[BudgetForm, Form()],
) -> Response:
    back = _project_url(request, slug)

    def action() -> str:
        dataset = form.dataset
        if not dataset:
            raise Invalid("no dataset named.", "Name the dataset the budget is for.")
        rho = form.rho_total()
        status = ledger.set_budget(
            session, actor=user.name, project=slug, dataset=dataset, rho_total=rho
        )
        left = status.to_dict()["rho_remaining"]
        return f"{slug} may spend rho {rho:g} on {dataset} ({left:g} left)."

    return act(request, session, action, back, back)


@router.post("/admin/projects/{slug}/publish")
def project_publish(
    request: Request, slug: str, user: Governance, session: DbSession, settings: AppSettings
) -> Response:
    back = _project_url(request, slug)

    def action() -> str:
        outcome = vault.publish_project(session, settings, slug, actor=user.name)
        if outcome.withdrawn:
            return "No effective grant: the project's data view is withdrawn."
        names = ", ".join(f"{d['dataset']}@{d['version']}" for d in outcome.datasets)
        return f"Published for {slug}: {names}."

    return act(request, session, action, back, back)


@router.get("/admin/projects/{slug}/close", response_class=HTMLResponse)
def close_confirm(
    request: Request,
    slug: str,
    user: Admin,
    session: DbSession,
    settings: AppSettings,
    servers: AppServers,
) -> Response:
    project = projects.get_project(session, slug)
    running, hub_problem = running_or_problem(servers)
    root = project_workspaces_dir(settings, slug)
    return page(
        request,
        "admin/close.html",
        {
            "title": f"Close project {slug}",
            "project": project,
            "published": usage.published(settings, slug),
            "servers": project_servers(running, slug),
            "hub_problem": hub_problem,
            "workspaces": sorted(p.name for p in root.iterdir()) if root.is_dir() else [],
            "retention": retention_project_dir(settings, slug),
        },
    )


@router.post("/admin/projects/{slug}/close")
def close(
    request: Request,
    slug: str,
    user: Admin,
    settings: AppSettings,
    servers: AppServers,
    form: Annotated[CloseForm, Form()],
) -> Response:
    """Runs in its own transactions (like the CLI): each step commits and is recorded even
    if a later step fails, and a re-run finishes an interrupted closure."""
    back = url(request, f"admin/projects/{quote(slug)}/close")
    if form.confirm != slug:
        return redirect(
            request, back, "fail", "the project's name was not typed to confirm.",
            f"Type {slug} in the box to close it.",
        )  # fmt: skip
    try:
        outcome = close_project(
            lambda: transaction(settings), settings, slug, actor=user.name, servers=servers
        )
    except TrenvError as refused:
        return redirect(request, back, "fail", refused.problem, refused.fix)
    kind = "review" if outcome.workspaces_kept else "pass"
    return redirect(request, _project_url(request, slug), kind, outcome.summary() + ".")
