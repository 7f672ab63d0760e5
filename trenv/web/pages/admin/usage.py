"""Usage: who opened which project's data when, and the servers running now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse

from trenv.admin import people, usage
from trenv.web.deps import Admin, AppSettings, DbSession
from trenv.web.flash import act, page, url
from trenv.web.pages.admin.common import AppServers, Governance, is_admin, running_or_problem
from trenv.web.pages.admin.forms import UsernameForm

router = APIRouter(include_in_schema=False)


@router.get("/admin/usage", response_class=HTMLResponse)
def usage_page(
    request: Request,
    user: Governance,
    session: DbSession,
    settings: AppSettings,
    servers: AppServers,
    project: str = "",
    person: str = "",
) -> Response:
    running, hub_problem = running_or_problem(servers)
    return page(
        request,
        "admin/usage.html",
        {
            "title": "Usage",
            "servers": usage.server_rows(session, settings, running),
            "hub_problem": hub_problem,
            "spawns": usage.spawns(session, project=project or None, user=person or None),
            "filters": {"project": project, "person": person},
            "can_stop": is_admin(user),
        },
    )


@router.post("/admin/usage/stop")
def stop_server(
    request: Request,
    user: Admin,
    session: DbSession,
    servers: AppServers,
    form: Annotated[UsernameForm, Form()],
) -> Response:
    back = url(request, "admin/usage")

    def action() -> str:
        name = form.username
        outcome = people.stop_server(session, actor=user.name, username=name, servers=servers)
        return f"{name}'s server: {outcome}."

    return act(request, session, action, back, back)
