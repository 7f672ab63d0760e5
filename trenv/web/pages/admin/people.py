"""People: accounts, global roles, second factors, deactivation (administrators only)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from trenv.admin import people
from trenv.registry import credentials, users
from trenv.store.models import Credential, GlobalRole, Organisation
from trenv.web.deps import Admin, DbSession
from trenv.web.flash import act, page, url
from trenv.web.pages.admin.common import AppServers, running_or_problem
from trenv.web.pages.admin.forms import ActiveForm, PersonForm, RolesForm

router = APIRouter(include_in_schema=False)


def _person_url(request: Request, name: str) -> str:
    return url(request, f"admin/people/{quote(name)}")


@router.get("/admin/people", response_class=HTMLResponse)
def people_list(request: Request, user: Admin, session: DbSession, servers: AppServers) -> Response:
    enrolled = {
        c.user_id: c for c in session.scalars(select(Credential))
    }  # one query, not one per row
    running, hub_problem = running_or_problem(servers)
    return page(
        request,
        "admin/people.html",
        {
            "title": "People",
            "people": users.list_users(session),
            "credentials": enrolled,
            "running": {s.user for s in running},
            "hub_problem": hub_problem,
            "roles": [r.value for r in GlobalRole],
        },
    )


@router.post("/admin/people")
def person_add(
    request: Request, user: Admin, session: DbSession, form: Annotated[PersonForm, Form()]
) -> Response:
    name = form.username
    back = url(request, "admin/people")

    def action() -> str:
        users.add_user(
            session,
            actor=user.name,
            username=name,
            full_name=form.full_name,
            email=form.email,
            roles=users.parse_roles(form.role),
        )
        return f"{name} added. Set a password and a second factor before they can log in."

    return act(request, session, action, back, back)


@router.get("/admin/people/{name}", response_class=HTMLResponse)
def person_page(
    request: Request, name: str, user: Admin, session: DbSession, servers: AppServers
) -> Response:
    person = users.get_user(session, name)
    running, hub_problem = running_or_problem(servers)
    controls = session.scalars(
        select(Organisation).where(Organisation.controllers.contains(person))
    )
    return page(
        request,
        "admin/person.html",
        {
            "title": f"{name}",
            "person": person,
            "credential": session.get(Credential, person.id),
            "controls": list(controls),
            "servers": [s for s in running if s.user == name],
            "hub_problem": hub_problem,
            "roles": [r.value for r in GlobalRole],
        },
    )


@router.post("/admin/people/{name}/roles")
def person_roles(
    request: Request, name: str, user: Admin, session: DbSession, form: Annotated[RolesForm, Form()]
) -> Response:
    back = _person_url(request, name)

    def action() -> str:
        roles = users.parse_roles(form.role)
        users.set_roles(session, actor=user.name, username=name, roles=roles)
        shown = ", ".join(sorted(r.value for r in roles)) or "no global role"
        return f"{name} now has: {shown}. The hub applies it at their next login."

    return act(request, session, action, back, back)


@router.post("/admin/people/{name}/active")
def person_active(
    request: Request,
    name: str,
    user: Admin,
    session: DbSession,
    servers: AppServers,
    form: Annotated[ActiveForm, Form()],
) -> Response:
    active = form.wanted
    back = _person_url(request, name)

    def action() -> str:
        outcome = people.set_active(
            session, actor=user.name, username=name, active=active, servers=servers
        )
        if active:
            return f"{name} is active again."
        return f"{name} is deactivated; their server: {outcome}."

    return act(request, session, action, back, back)


@router.post("/admin/people/{name}/mfa", response_class=HTMLResponse)
def person_mfa(request: Request, name: str, user: Admin, session: DbSession) -> Response:
    """Shown once, in the reply to the post itself (not via a redirect and a cookie): the
    secret is never stored anywhere but the registry, and the page is not cached."""
    secret = credentials.enrol_totp(session, actor=user.name, username=name)
    return page(
        request,
        "admin/mfa.html",
        {
            "title": f"New second factor for {name}",
            "person": name,
            "secret": secret,
            "uri": credentials.provisioning_uri(name, secret),
        },
    )
