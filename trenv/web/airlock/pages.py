"""The airlock's pages: my requests, a new request, the request page, the checkers' queue.

Plain HTML forms, no script. Every form posts to a route here that calls the same commands
as the JSON API and redirects back (post/redirect/get); a refusal rolls the transaction back
and comes back as a notice on the page it was made from. FastAPI reads each form into its
parameters or a model (:class:`NewRequestForm`); nothing here parses a form by hand.
Cookie-authenticated posts pass the same-origin check in :mod:`trenv.web.deps`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from trenv.airlock import queries, service
from trenv.airlock import release as releasing
from trenv.airlock.queries import RequestContext
from trenv.airlock.service import FileSpec
from trenv.airlock.states import REVIEWABLE
from trenv.errors import Forbidden, Invalid
from trenv.layout import workspace_dir
from trenv.registry.projects import list_projects, projects_for_user
from trenv.store.models import Decision, ExportRequest, RequestState
from trenv.web.airlock import files, view
from trenv.web.airlock.caller import AirlockCaller, Caller, load, outside_only
from trenv.web.airlock.common import create_project, zip_response
from trenv.web.airlock.meter import meter_figure, meter_previews
from trenv.web.airlock.preview import build_preview, preview_limits
from trenv.web.deps import AppSettings, DbSession, Reviewer
from trenv.web.flash import act as _act
from trenv.web.flash import page as _page
from trenv.web.flash import url as _url
from trenv.web.templating import templates
from trenv.web.workspace_files import list_workspace_files

router = APIRouter(include_in_schema=False)
AGE_CHOICES = ((0, "any age"), (24, "over a day"), (72, "over 3 days"), (168, "over a week"))


# --- small formatting helpers for the templates ----------------------------------------------


def age_text(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))} min"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def state_text(state: object) -> str:
    return str(getattr(state, "value", state)).replace("_", " ")


templates.env.filters.setdefault("age", age_text)
templates.env.filters.setdefault("filesize", size_text)
templates.env.filters.setdefault("state", state_text)


# --- researcher: my requests, new request ----------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
def my_requests(request: Request, caller: AirlockCaller, session: DbSession) -> Response:
    rows = [view.summary(r) for r in queries.requests_of(session, caller.name)]
    rows = [r for r in rows if caller.may_touch(r.project)]
    return _page(request, "airlock/requests.html", {"title": "Export requests", "rows": rows})


@router.get("/requests/new", response_class=HTMLResponse)
def new_request(
    request: Request,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
    project: str | None = None,
) -> Response:
    choices = [p.slug for p in projects_for_user(session, caller.name)]
    if caller.in_container:
        choices = [p for p in choices if p == caller.server_project]
    chosen = project if project in choices else (choices[0] if len(choices) == 1 else None)
    files = list_workspace_files(workspace_dir(settings, chosen, caller.name)) if chosen else []
    return _page(
        request,
        "airlock/new.html",
        {"title": "New export request", "projects": choices, "chosen": chosen, "files": files},
    )


class NewRequestForm(BaseModel):
    """The new-request form: every workspace file is a row ``i`` with the fields ``path-i``
    and ``why-i``; the ticked rows' numbers come as ``pick``. The numbered fields have no
    fixed names, so they arrive as the model's extra fields."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str | list[str]]

    project: str = ""
    title: str = ""
    pick: list[str] = Field(default_factory=list)
    submit: str = ""

    def field(self, name: str) -> str:
        value = (self.model_extra or {}).get(name, "")
        # A repeated field counts with its last value, as a plain form read would.
        return value[-1] if isinstance(value, list) else value

    def specs(self) -> list[FileSpec]:
        return [FileSpec(self.field(f"path-{i}"), self.field(f"why-{i}")) for i in self.pick]


@router.post("/requests/new")
def create_request(
    request: Request,
    form: Annotated[NewRequestForm, Form()],
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    project = form.project or None
    specs = form.specs()
    back = _url(request, "requests/new" + (f"?project={quote(project)}" if project else ""))
    created: list[ExportRequest] = []

    def action() -> str:
        if not specs:
            raise Invalid("no files were chosen.", "Tick the files to export.")
        created.append(
            service.create_request(
                session,
                settings,
                actor=caller.name,
                project=create_project(caller, project),
                title=form.title,
                files=specs,
                submit_now=form.submit == "yes",
                in_container=caller.in_container,
            ).request
        )
        return (
            "Request created." if created[0].state == RequestState.draft else "Request submitted."
        )

    response = _act(request, session, action, back, back)
    if created:
        response.headers["location"] = _url(request, f"requests/{created[0].id}")
    return response


# --- the request page ------------------------------------------------------------------------


def _earlier_releases(session: Session, req: ExportRequest) -> list[dict[str, Any]]:
    out = []
    for other in queries.released_for_project(session, req.project):
        if other.id == req.id:
            continue
        outcomes = queries.decision_of(other)
        out.append(
            {
                "id": other.id,
                "title": other.title,
                "released_at": other.released_at,
                "requester": other.requester,
                "files": [
                    f.path
                    for f in queries.round_files(other, other.round)
                    if outcomes.get(f.id) == Decision.approve
                ],
            }
        )
    return out


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(
    request: Request,
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    ctx = load(session, caller, request_id)
    req, actor = ctx.request, ctx.actor
    detail = view.detail(req, actor)
    rows = {f.id: f for f in queries.working_files(req)}
    # the raw files for the checkers reviewing it, server-rendered previews for the rest,
    # judged under the project's output limits (a browser outside the TRE)
    bytes_allowed = files.may_read_bytes(caller, ctx)
    limits = preview_limits(req.project.policy_profile)
    previews = {
        f.id: build_preview(
            settings, rows[f.id], view.check_of(rows[f.id]), full=bytes_allowed, limits=limits
        )
        for f in detail.file_list
    }
    if not bytes_allowed:
        previews = meter_previews(
            session, username=caller.name, project=req.project.slug, previews=previews
        )
    own_votes = {
        v.file_id: v for v in req.votes if v.checker == caller.name and v.round == req.round
    }
    is_requester = caller.name == req.requester
    workspace = (
        list_workspace_files(workspace_dir(settings, req.project.slug, req.requester))
        if "edit" in detail.allowed
        else []
    )
    context = {
        "title": detail.title,
        "r": detail,
        "previews": previews,
        "own_votes": own_votes,
        "is_requester": is_requester,
        "reviewing": "review" in detail.allowed,
        "checker_view": actor.is_checker and not actor.project_member,
        "bytes_allowed": bytes_allowed,
        "earlier_releases": _earlier_releases(session, req),
        "workspace": workspace,
        "decisions": list(Decision),
        "in_container": caller.in_container,
    }
    return _page(request, "airlock/request.html", context)


def _request_action(
    request: Request,
    session: Session,
    caller: Caller,
    request_id: int,
    action: Callable[[RequestContext], str],
    anchor: str = "",
) -> Response:
    back = _url(request, f"requests/{request_id}") + anchor

    def checked() -> str:
        # Loaded once, locked, with the container's project rule, before anything else.
        return action(load(session, caller, request_id, lock=True))

    return _act(request, session, checked, back, back)


@router.post("/requests/{request_id}/files")
def add_file(
    request: Request,
    request_id: int,
    path: Annotated[str, Form()],
    justification: Annotated[str, Form()],
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    def action(ctx: RequestContext) -> str:
        service.add_file(session, settings, ctx, path=path, justification=justification)
        return f"{path} added."

    return _request_action(request, session, caller, request_id, action)


@router.post("/requests/{request_id}/files/remove")
def remove_file(
    request: Request,
    request_id: int,
    path: Annotated[str, Form()],
    caller: AirlockCaller,
    session: DbSession,
) -> Response:
    def action(ctx: RequestContext) -> str:
        service.remove_file(session, ctx, path=path)
        return f"{path} removed."

    return _request_action(request, session, caller, request_id, action)


@router.post("/requests/{request_id}/submit")
def submit(
    request: Request,
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
    comment: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: RequestContext) -> str:
        req = service.submit(session, settings, ctx, comment=comment.strip())
        return f"Request {state_text(req.state)} for review."

    return _request_action(request, session, caller, request_id, action)


@router.post("/requests/{request_id}/withdraw")
def withdraw(
    request: Request,
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    comment: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: RequestContext) -> str:
        service.withdraw(session, ctx, comment=comment.strip())
        return "Request withdrawn."

    return _request_action(request, session, caller, request_id, action)


@router.post("/requests/{request_id}/release")
def release(
    request: Request,
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    def action(ctx: RequestContext) -> str:
        releasing.release(session, settings, ctx)
        return "Released: the bundle is ready to download."

    return _request_action(request, session, caller, request_id, action)


@router.get("/requests/{request_id}/download")
def download(
    request_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> Response:
    ctx = load(session, caller, request_id)
    name, data = releasing.bundle_for_download(session, settings, ctx)
    session.commit()  # the download's audit event is stored before any byte leaves
    return zip_response(name, data)


@router.post("/requests/{request_id}/votes")
def vote(
    request: Request,
    request_id: int,
    file_id: Annotated[int, Form()],
    decision: Annotated[Decision, Form()],
    reviewer: Reviewer,
    caller: AirlockCaller,
    session: DbSession,
    comment: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: RequestContext) -> str:
        outside_only(caller, "reviewing")
        req = service.vote(session, ctx, file_id=file_id, decision=decision, comment=comment)
        if req.state not in REVIEWABLE:
            return f"Vote recorded; the request is now {state_text(req.state)}."
        return "Vote recorded."

    return _request_action(request, session, caller, request_id, action, f"#file-{file_id}")


@router.get("/requests/{request_id}/files/{file_id}/raw")
def raw_file(
    request_id: int, file_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> Response:
    """The frozen bytes of a figure (PNG inline, PDF as a download), to the checkers
    reviewing the request only; everyone else sees the preview below."""
    ctx = load(session, caller, request_id)
    row = files.file_row(ctx.request, file_id)
    try:
        files.require_bytes(caller, ctx)
    except Forbidden as exc:
        files.audit_refusal(session, caller.name, row, exc.problem)
        session.commit()  # the refusal's audit event stays when the 403 rolls back the rest
        raise
    return files.raw_response(settings, row)


@router.get("/requests/{request_id}/files/{file_id}/preview.png")
def preview_file(
    request_id: int, file_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> Response:
    """A coarse server-rendered preview of a figure, for anyone who may see the request."""
    ctx = load(session, caller, request_id)
    response = files.preview_response(settings, files.file_row(ctx.request, file_id))
    if not files.may_read_bytes(caller, ctx):
        meter_figure(
            session,
            username=caller.name,
            project=ctx.request.project.slug,
            nbytes=len(response.body),
        )
    return response


# --- checkers: the queue ---------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    reviewer: Reviewer,
    caller: AirlockCaller,
    session: DbSession,
    project: str = "",
    state: str = "",
    min_age: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    outside_only(caller, "reviewing")
    states = [RequestState(state)] if state in {s.value for s in REVIEWABLE} else list(REVIEWABLE)
    rows = [
        view.summary(r)
        for r in queries.queue(
            session,
            checker=caller.name,
            project=project or None,
            states=states,
            older_than=dt.timedelta(hours=min_age) if min_age else None,
        )
    ]
    return _page(
        request,
        "airlock/queue.html",
        {
            "title": "Review queue",
            "rows": rows,
            "projects": [p.slug for p in list_projects(session)],
            "states": sorted(s.value for s in REVIEWABLE),
            "ages": AGE_CHOICES,
            "filters": {"project": project, "state": state, "min_age": min_age},
        },
    )
