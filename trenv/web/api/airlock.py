"""The airlock's JSON API: export requests, review and release.

Every route is a thin shell around :mod:`trenv.airlock.service` and
:mod:`trenv.airlock.release`, which check the permissions and write the audit log; this
module adds what only the web knows: whether the caller sits inside a container (released
outputs never go in, reviews are not done from there) and which project a notebook
server's token acts for.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from trenv.airlock import release as releasing
from trenv.airlock import service
from trenv.airlock.service import FileSpec
from trenv.airlock.states import REVIEWABLE
from trenv.errors import Forbidden, Invalid
from trenv.store.models import Decision, RequestState
from trenv.web import airlock_view as view
from trenv.web.airlock_caller import AirlockCaller, Caller, load, outside_only
from trenv.web.deps import AppSettings, DbSession, Reviewer

router = APIRouter(prefix="/airlock", tags=["airlock"])


class FileIn(BaseModel):
    path: str = Field(description="path relative to your project workspace, e.g. outputs/t.csv")
    justification: str = Field(description="why this output is needed and why it is safe")


class CreateIn(BaseModel):
    title: str = Field(max_length=300)
    project: str | None = Field(
        None,
        description="the project (from the browser); a notebook server's token always acts "
        "for the project of its running server",
    )
    files: list[FileIn] = Field(default_factory=list)
    submit: bool = Field(False, description="submit for review at once")


class CommentIn(BaseModel):
    comment: str = Field("", max_length=5000)


class VoteIn(BaseModel):
    file_id: int
    decision: Decision
    comment: str = Field(
        "",
        max_length=5000,
        description="required to reject, to request changes or to approve a failed file",
    )


def fresh_detail(session: Session, caller: Caller, request_id: int) -> view.RequestDetail:
    """The request as it stands after this transaction's changes."""
    session.flush()
    session.expire_all()
    request, actor = load(session, caller, request_id)
    return view.detail(request, actor)


def create_project(caller: Caller, named: str | None) -> str:
    """The project a new request belongs to."""
    if caller.in_container:
        project = caller.container_project()
        if named is not None and named != project:
            raise Forbidden(
                f"this notebook server works on project {project!r}, not {named!r}.",
                "Ask for outputs of another project from that project's server.",
            )
        return project
    if not named:
        raise Invalid("name the project the outputs belong to.", "Add 'project' to the body.")
    return named


@router.get("/requests", summary="Export requests of my projects, newest first")
def list_requests(
    caller: AirlockCaller, session: DbSession, project: str | None = None
) -> list[view.RequestSummary]:
    if caller.in_container:
        mine = caller.container_project()
        if project is not None and project != mine:
            return []
        project = mine
    return [view.summary(r) for r in service.requests_of(session, caller.name, project)]


@router.post(
    "/requests",
    summary="Create an export request (optionally with files, optionally submitted)",
    status_code=status.HTTP_201_CREATED,
)
def create_request(
    body: CreateIn, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> view.RequestDetail:
    request = service.create_request(
        session,
        settings,
        actor=caller.name,
        project=create_project(caller, body.project),
        title=body.title,
        files=[FileSpec(f.path, f.justification) for f in body.files],
        submit_now=body.submit,
        in_container=caller.in_container,
    )
    return fresh_detail(session, caller, request.id)


@router.get("/requests/{request_id}", summary="One request: files, checks, state, history")
def get_request(request_id: int, caller: AirlockCaller, session: DbSession) -> view.RequestDetail:
    request, actor = load(session, caller, request_id)
    return view.detail(request, actor)


@router.post("/requests/{request_id}/files", summary="Add (or replace) a file from the workspace")
def add_file(
    request_id: int, body: FileIn, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> view.RequestDetail:
    load(session, caller, request_id)
    service.add_file(
        session,
        settings,
        request_id,
        actor=caller.name,
        path=body.path,
        justification=body.justification,
        in_container=caller.in_container,
    )
    return fresh_detail(session, caller, request_id)


@router.delete("/requests/{request_id}/files", summary="Remove a file from the request")
def remove_file(
    request_id: int,
    path: Annotated[str, Query(description="the file's path as listed in the request")],
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
) -> view.RequestDetail:
    load(session, caller, request_id)
    service.remove_file(session, settings, request_id, actor=caller.name, path=path)
    return fresh_detail(session, caller, request_id)


@router.post("/requests/{request_id}/submit", summary="Submit, or resubmit after changes")
def submit(
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
    body: CommentIn | None = None,
) -> view.RequestDetail:
    load(session, caller, request_id)
    service.submit(
        session,
        settings,
        request_id,
        actor=caller.name,
        in_container=caller.in_container,
        comment=(body.comment if body else "").strip(),
    )
    return fresh_detail(session, caller, request_id)


@router.post("/requests/{request_id}/withdraw", summary="Withdraw a request that is not final")
def withdraw(
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
    body: CommentIn | None = None,
) -> view.RequestDetail:
    load(session, caller, request_id)
    service.withdraw(
        session,
        settings,
        request_id,
        actor=caller.name,
        comment=(body.comment if body else "").strip(),
    )
    return fresh_detail(session, caller, request_id)


@router.get("/queue", summary="Requests waiting for review that I may review, oldest first")
def review_queue(
    reviewer: Reviewer,
    caller: AirlockCaller,
    session: DbSession,
    project: str | None = None,
    state: RequestState | None = None,
    min_age_hours: Annotated[float, Query(ge=0)] = 0,
) -> list[view.RequestSummary]:
    outside_only(caller, "reviewing")
    if state is not None and state not in REVIEWABLE:
        raise Invalid(
            f"the queue holds only requests waiting for review, not {state.value}.",
            f"Use one of: {', '.join(sorted(s.value for s in REVIEWABLE))}.",
        )
    requests = service.queue(
        session,
        checker=caller.name,
        project=project or None,
        states=[state] if state else tuple(REVIEWABLE),
        older_than=dt.timedelta(hours=min_age_hours) if min_age_hours else None,
    )
    return [view.summary(r) for r in requests]


@router.post("/requests/{request_id}/votes", summary="Vote on one file (output checkers)")
def vote(
    request_id: int,
    body: VoteIn,
    reviewer: Reviewer,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
) -> view.RequestDetail:
    outside_only(caller, "reviewing")
    load(session, caller, request_id)
    service.vote(
        session,
        settings,
        request_id,
        actor=caller.name,
        file_id=body.file_id,
        decision=body.decision,
        comment=body.comment,
        in_container=caller.in_container,
    )
    return fresh_detail(session, caller, request_id)


@router.post("/requests/{request_id}/release", summary="Release an approved request")
def release(
    request_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> view.RequestDetail:
    load(session, caller, request_id)
    releasing.release(
        session, settings, request_id, actor=caller.name, in_container=caller.in_container
    )
    return fresh_detail(session, caller, request_id)


@router.get(
    "/requests/{request_id}/download",
    summary="Download the released zip (the requester, from outside the TRE)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the release bundle"}},
)
def download(
    request_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> Response:
    load(session, caller, request_id)
    name, data = releasing.bundle_for_download(
        session, settings, request_id, actor=caller.name, in_container=caller.in_container
    )
    # The download's audit event must be stored before any byte leaves.
    session.commit()
    return zip_response(name, data)


def zip_response(name: str, data: bytes) -> Response:
    return Response(
        content=data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
