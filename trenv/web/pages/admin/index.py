"""The administration landing page: one card per area, with what needs attention."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from trenv.registry import grants, images, projects
from trenv.store.models import GrantStatus, ProjectStatus
from trenv.web.deps import DbSession
from trenv.web.flash import page
from trenv.web.pages.admin.common import Governance, is_admin

router = APIRouter(include_in_schema=False)


@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request, user: Governance, session: DbSession) -> Response:
    every = images.list_images(session)
    return page(
        request,
        "admin/index.html",
        {
            "title": "Administration",
            "active_projects": sum(
                p.status == ProjectStatus.active for p in projects.list_projects(session)
            ),
            "proposed": sum(g.status == GrantStatus.proposed for g in grants.list_grants(session)),
            "unapproved": sum(not i.approved and not i.retired for i in every),
            "must_move": [
                p.slug
                for i in every
                if i.retired
                for p in images.projects_on_image(session, i)
                if p.status == ProjectStatus.active
            ],
            "is_admin": is_admin(user),
        },
    )
