"""The airlock's JSON API: export requests, review and release.

Every route is a thin shell around the commands of :mod:`trenv.airlock.service` and
:mod:`trenv.airlock.release` (which check the permissions and write the audit log) and the
queries of :mod:`trenv.airlock.queries`; this module adds what only the web knows: whether
the caller sits inside a container (released outputs never go in, reviews are not done from
there) and which project a notebook server's token acts for. A route loads the request once
(:func:`trenv.web.airlock.caller.load`) and answers from that same request after the command.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from trenv.airlock import queries, service
from trenv.airlock import release as releasing
from trenv.airlock.queries import RequestContext
from trenv.airlock.service import FileSpec
from trenv.airlock.states import REVIEWABLE
from trenv.errors import Invalid
from trenv.store.models import Decision, RequestState
from trenv.web.airlock import view
from trenv.web.airlock.caller import AirlockCaller, load, outside_only
from trenv.web.airlock.common import create_project, zip_response
from trenv.web.deps import AppSettings, DbSession, Reviewer
from trenv.wire.airlock import MAX_COMMENT, CommentIn, CreateIn, FileIn

router = APIRouter(prefix="/airlock", tags=["airlock"])


class VoteIn(BaseModel):
    file_id: int
    decision: Decision
    comment: str = Field(
        "",
        max_length=MAX_COMMENT,
        description="required to reject, to request changes or to approve a failed file",
    )


def fresh_detail(session: Session, ctx: RequestContext) -> view.RequestDetail:
    """The request as it stands after this transaction's changes (the commands keep the
    loaded request up to date, so it is not loaded again)."""
    session.flush()
    return view.detail(ctx.request, ctx.actor)


@router.get("/requests", summary="Export requests of my projects, newest first")
def list_requests(
    caller: AirlockCaller, session: DbSession, project: str | None = None
) -> list[view.RequestSummary]:
    if caller.in_container:
        mine = caller.container_project()
        if project is not None and project != mine:
            return []
        project = mine
    return [view.summary(r) for r in queries.requests_of(session, caller.name, project)]


@router.post(
    "/requests",
    summary="Create an export request (optionally with files, optionally submitted)",
    status_code=status.HTTP_201_CREATED,
)
def create_request(
    body: CreateIn, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> view.RequestDetail:
    ctx = service.create_request(
        session,
        settings,
        actor=caller.name,
        project=create_project(caller, body.project),
        title=body.title,
        files=[FileSpec(f.path, f.justification) for f in body.files],
        submit_now=body.submit,
        in_container=caller.in_container,
    )
    return fresh_detail(session, ctx)


@router.get("/requests/{request_id}", summary="One request: files, checks, state, history")
def get_request(request_id: int, caller: AirlockCaller, session: DbSession) -> view.RequestDetail:
    ctx = load(session, caller, request_id)
    return view.detail(ctx.request, ctx.actor)


@router.post("/requests/{request_id}/files", summary="Add (or replace) a file from the workspace")
def add_file(
    request_id: int, body: FileIn, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> view.RequestDetail:
    ctx = load(session, caller, request_id, lock=True)
    service.add_file(session, settings, ctx, path=body.path, justification=body.justification)
    return fresh_detail(session, ctx)


@router.delete("/requests/{request_id}/files", summary="Remove a file from the request")
def remove_file(
    request_id: int,
    path: Annotated[str, Query(description="the file's path as listed in the request")],
    caller: AirlockCaller,
    session: DbSession,
) -> view.RequestDetail:
    ctx = load(session, caller, request_id, lock=True)
    service.remove_file(session, ctx, path=path)
    return fresh_detail(session, ctx)


@router.post("/requests/{request_id}/submit", summary="Submit, or resubmit after changes")
def submit(
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    settings: AppSettings,
    body: CommentIn | None = None,
) -> view.RequestDetail:
    ctx = load(session, caller, request_id, lock=True)
    service.submit(session, settings, ctx, comment=(body.comment if body else "").strip())
    return fresh_detail(session, ctx)


@router.post("/requests/{request_id}/withdraw", summary="Withdraw a request that is not final")
def withdraw(
    request_id: int,
    caller: AirlockCaller,
    session: DbSession,
    body: CommentIn | None = None,
) -> view.RequestDetail:
    ctx = load(session, caller, request_id, lock=True)
    service.withdraw(session, ctx, comment=(body.comment if body else "").strip())
    return fresh_detail(session, ctx)


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
    requests = queries.queue(
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
) -> view.RequestDetail:
    outside_only(caller, "reviewing")
    ctx = load(session, caller, request_id, lock=True)
    service.vote(session, ctx, file_id=body.file_id, decision=body.decision, comment=body.comment)
    return fresh_detail(session, ctx)


@router.post("/requests/{request_id}/release", summary="Release an approved request")
def release(
    request_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> view.RequestDetail:
    ctx = load(session, caller, request_id, lock=True)
    releasing.release(session, settings, ctx)
    return fresh_detail(session, ctx)


@router.get(
    "/requests/{request_id}/download",
    summary="Download the released zip (the requester, from outside the TRE)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the release bundle"}},
)
def download(
    request_id: int, caller: AirlockCaller, session: DbSession, settings: AppSettings
) -> Response:
    ctx = load(session, caller, request_id)
    name, data = releasing.bundle_for_download(session, settings, ctx)
    # The download's audit event must be stored before any byte leaves.
    session.commit()
    return zip_response(name, data)
