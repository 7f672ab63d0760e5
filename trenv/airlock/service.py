"""The airlock's commands: every change to an export request, checked and audited.

The web API, the pages and the CLI change requests only through these functions; each one
takes the request's :class:`~trenv.airlock.queries.RequestContext` (loaded and locked once
per transaction by the caller, see :func:`trenv.airlock.queries.load_context`), asks
:mod:`trenv.airlock.permissions`, moves the state through :mod:`trenv.airlock.states` and
writes an audit event in the same transaction. What is only read lives in
:mod:`trenv.airlock.queries`.

Files are frozen when they are added to a request: the server reads them from the
requester's workspace for the project (never a path the client resolved), refuses anything
unsafe (:mod:`trenv.airlock.intake`), stores the exact bytes by sha256 and runs the checks
on those bytes. What the checkers see, vote on and release is that frozen copy, however the
workspace changes afterwards. A resubmission starts a new round: the files carry over
unchanged unless the researcher replaces or removes them, and every round stays in the
history with its votes.

The commands keep the request's collections (files, votes, history) up to date in memory as
they add and delete rows, so nothing after them needs to load the request again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from trenv import audit
from trenv.airlock import permissions as may
from trenv.airlock.formats import check_file
from trenv.airlock.intake import IntakeLimits, read_sidecar, read_workspace_file, sidecar_paths
from trenv.airlock.queries import (
    RequestContext,
    actor_for,
    content_store,
    dp_ledger_entry,
    provenance,
    round_files,
    round_outcome,
    working_files,
    working_round,
)
from trenv.airlock.server_differencing import with_server_differencing
from trenv.airlock.states import Move, next_state
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.disclosure.policy import load_policy
from trenv.errors import Forbidden, Invalid, NotFound
from trenv.layout import workspace_dir
from trenv.registry.projects import get_project, projects_for_user
from trenv.store.models import (
    Decision,
    ExportRequest,
    RequestFile,
    RequestState,
    RequestTransition,
    ReviewVote,
    utcnow,
)
from trenv.wire.airlock import MAX_TITLE


@dataclass(frozen=True)
class FileSpec:
    path: str
    justification: str


def intake_limits(settings: Settings) -> IntakeLimits:
    return IntakeLimits(
        max_file_bytes=int(settings.airlock_max_file_mb * 1024 * 1024),
        max_files=settings.airlock_max_files,
    )


def _changing(ctx: RequestContext) -> ExportRequest:
    """The request of ``ctx``; a command changes only a request its transaction has locked."""
    if not ctx.locked:
        raise RuntimeError("an airlock command needs the request loaded with lock=True")
    return ctx.request


# --- creating and editing ---------------------------------------------------------------


def create_request(
    session: Session,
    settings: Settings,
    *,
    actor: str,
    project: str,
    title: str,
    files: Sequence[FileSpec] = (),
    submit_now: bool = False,
    in_container: bool = False,
) -> RequestContext:
    """A new draft (optionally with files, optionally submitted in the same transaction)."""
    proj = get_project(session, project)
    who = actor_for(session, actor, proj, in_container=in_container)
    active_member = proj in projects_for_user(session, actor)
    if not may.may_create(who, active_member=active_member, project_active=proj.is_active()):
        raise Forbidden(
            f"{actor!r} cannot ask for outputs of project {project!r}.",
            "Only active members of an open project can create export requests.",
        )
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise Invalid(
            f"the request needs a title of 1 to {MAX_TITLE} characters.",
            "Say in a few words what the outputs are, e.g. 'Reoffending by offence type'.",
        )
    policy = load_policy(proj.policy_profile)
    request = ExportRequest(
        project=proj,
        requester=actor,
        title=title,
        state=RequestState.draft,
        round=0,
        approvals_required=policy.airlock.approvals,
        policy=policy.name,
        policy_version=policy.version,
        provenance={},
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.airlock_request_create,
        object_type="export_request",
        object_id=request.id,
        detail={"project": project, "title": title},
    )
    # Made in this transaction, so no other one sees the row before it commits: as locked.
    ctx = RequestContext(request, who, locked=True)
    for spec in files:
        add_file(session, settings, ctx, path=spec.path, justification=spec.justification)
    if submit_now:
        submit(session, settings, ctx)
    return ctx


def _materialise_round(session: Session, request: ExportRequest) -> None:
    """In changes requested, the first edit copies the last round's files into the new one."""
    new_round = working_round(request)
    if request.state != RequestState.changes_requested or round_files(request, new_round):
        return
    for old in round_files(request, request.round):
        session.add(
            RequestFile(
                request=request,  # also appends the copy to request.files
                round=new_round,
                path=old.path,
                sha256=old.sha256,
                size=old.size,
                media_type=old.media_type,
                kind=old.kind,
                justification=old.justification,
                record_sha256=old.record_sha256,
                dp_sha256=old.dp_sha256,
                check_status=old.check_status,
                checks=old.checks,
            )
        )
    session.flush()


def _delete_file(session: Session, request: ExportRequest, row: RequestFile) -> None:
    request.files.remove(row)  # the collection stays true without loading it again
    session.delete(row)


def add_file(
    session: Session,
    settings: Settings,
    ctx: RequestContext,
    *,
    path: str,
    justification: str,
) -> RequestFile:
    """Freeze ``path`` from the requester's workspace into the request (replacing a file of
    the same path in the current round) and check it."""
    request = _changing(ctx)
    if not may.may_edit(ctx.actor, ctx.facts):
        raise Forbidden(
            f"request {request.id} cannot be changed now ({request.state.value}).",
            "Files can be added by the requester to a draft or after changes were requested.",
        )
    justification = justification.strip()
    if not justification:
        raise Invalid(
            f"{path}: a justification is required.",
            "Explain why this output is needed and why it is safe to release.",
        )
    _materialise_round(session, request)
    workspace = workspace_dir(settings, request.project.slug, request.requester)
    limits = intake_limits(settings)
    frozen = read_workspace_file(workspace, path, limits)
    current = working_files(request)
    others = [f for f in current if f.path != frozen.path]
    if len(others) + 1 > limits.max_files:
        raise Invalid(
            f"a request holds at most {limits.max_files} files.",
            "Split the outputs over several requests.",
        )
    if sum(f.size for f in others) + frozen.size > limits.max_request_bytes:
        raise Invalid(
            f"the request would exceed {limits.max_request_bytes // (1024 * 1024)} MiB.",
            "Split the outputs over several requests.",
        )
    sidecars = sidecar_paths(frozen.path)
    record = read_sidecar(workspace, sidecars["record"], limits.max_file_bytes)
    dp_output = read_sidecar(workspace, sidecars["dp"], limits.max_file_bytes)
    check = check_file(
        frozen,
        project=request.project.slug,
        policy=request.policy,
        record=record,
        dp_output=dp_output,
        dp_lookup=lambda spend_id: dp_ledger_entry(session, spend_id),
    )
    check = with_server_differencing(session, settings, request, frozen, record, check)
    store = content_store(settings)
    store.put(frozen.data)
    record_sha = store.put(record) if record is not None else None
    dp_sha = store.put(dp_output) if dp_output is not None else None
    for old in current:
        if old.path == frozen.path:
            _delete_file(session, request, old)
    session.flush()  # the replaced row goes before its successor takes its (round, path)
    row = RequestFile(
        request=request,
        round=working_round(request),
        path=frozen.path,
        sha256=frozen.sha256,
        size=frozen.size,
        media_type=frozen.media_type,
        kind=check.kind,
        justification=justification,
        record_sha256=record_sha,
        dp_sha256=dp_sha,
        check_status=check.status,
        checks=check.model_dump(mode="json"),
    )
    session.add(row)
    request.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=ctx.actor.username,
        action=AuditAction.airlock_file_add,
        object_type="export_request",
        object_id=request.id,
        detail={
            "path": frozen.path,
            "sha256": frozen.sha256,
            "size": frozen.size,
            "check": check.status,
            "round": row.round,
            # an image is frozen re-encoded: what was read, and what the re-encoding removed
            **(
                {"read_sha256": frozen.source_sha256, "reencoded": frozen.reencoded.summary()}
                if frozen.reencoded is not None
                else {}
            ),
        },
    )
    return row


def remove_file(session: Session, ctx: RequestContext, *, path: str) -> None:
    request = _changing(ctx)
    if not may.may_edit(ctx.actor, ctx.facts):
        raise Forbidden(
            f"request {request.id} cannot be changed now ({request.state.value}).",
            "Files can be removed by the requester from a draft or after changes were requested.",
        )
    _materialise_round(session, request)
    matches = [f for f in working_files(request) if f.path == path]
    if not matches:
        raise NotFound(f"{path} is not part of request {request.id}.")
    for row in matches:
        _delete_file(session, request, row)
    request.updated_at = utcnow()
    audit.record(
        session,
        actor=ctx.actor.username,
        action=AuditAction.airlock_file_remove,
        object_type="export_request",
        object_id=request.id,
        detail={"path": path},
    )
    session.flush()


# --- moving the request -----------------------------------------------------------------


def move_request(
    session: Session, request: ExportRequest, move: Move, *, actor: str, comment: str = ""
) -> None:
    before = request.state
    after = next_state(before, move)
    request.state = after
    now = utcnow()
    request.updated_at = now
    session.add(
        RequestTransition(
            request=request,
            from_state=before.value,
            to_state=after.value,
            actor=actor,
            comment=comment,
        )
    )
    audit.record(
        session,
        actor=actor,
        action=AuditAction(f"airlock.request.{move.value}"),
        object_type="export_request",
        object_id=request.id,
        detail={"from": before.value, "to": after.value, "round": request.round},
    )


def submit(
    session: Session, settings: Settings, ctx: RequestContext, *, comment: str = ""
) -> ExportRequest:
    """Submit a draft, or resubmit after changes were requested (a new round)."""
    request, who = _changing(ctx), ctx.actor
    facts = ctx.facts
    if request.state == RequestState.changes_requested:
        if not may.may_resubmit(who, facts):
            raise Forbidden(f"{who.username!r} cannot resubmit request {request.id}.")
        _materialise_round(session, request)
        move = Move.resubmit
    else:
        if not may.may_submit(who, facts):
            if request.state == RequestState.draft and not facts.has_files:
                raise Invalid("the request has no files.", "Add at least one file first.")
            if request.state != RequestState.draft:
                next_state(request.state, Move.submit)  # raises the state's own message
            raise Forbidden(f"{who.username!r} cannot submit request {request.id}.")
        move = Move.submit
    request.round += 1
    request.submitted_at = utcnow()
    request.provenance = provenance(settings, request.project)
    move_request(session, request, move, actor=who.username, comment=comment)
    session.flush()
    return request


def withdraw(session: Session, ctx: RequestContext, *, comment: str = "") -> ExportRequest:
    request, who = _changing(ctx), ctx.actor
    if not may.may_withdraw(who, ctx.facts):
        if request.requester == who.username:
            next_state(request.state, Move.withdraw)
        raise Forbidden(f"only the requester can withdraw request {request.id}.")
    move_request(session, request, Move.withdraw, actor=who.username, comment=comment)
    return request


# --- review -----------------------------------------------------------------------------


def vote(
    session: Session,
    ctx: RequestContext,
    *,
    file_id: int,
    decision: Decision,
    comment: str = "",
) -> ExportRequest:
    """One checker's vote on one file; decides the round when enough checkers are done."""
    request, who = _changing(ctx), ctx.actor
    if not may.may_review(who, ctx.facts):
        if who.username == request.requester:
            raise Forbidden("you cannot review your own request.", "Another checker must.")
        if who.project_member:
            raise Forbidden(
                f"you are or were a member of project {request.project.slug!r}.",
                "Reviews must be independent: a checker outside the project must review it.",
            )
        if not who.is_checker:
            raise Forbidden("only output checkers review requests.")
        if who.in_container:
            raise Forbidden(
                "requests are not reviewed from inside a notebook container.",
                "Use the trenv pages from your own computer.",
            )
        next_state(request.state, Move.start_review)  # raises the state's own message
        raise Forbidden("this request cannot be reviewed now.")
    files = {f.id: f for f in round_files(request, request.round)}
    target = files.get(file_id)
    if target is None:
        raise NotFound(f"file {file_id} is not part of round {request.round} of this request.")
    comment = comment.strip()
    if decision != Decision.approve and not comment:
        raise Invalid(
            "a comment is required to reject or to request changes.",
            "Tell the researcher what is wrong and what would make it releasable.",
        )
    if decision == Decision.approve and target.check_status == "fail" and not comment:
        raise Invalid(
            f"{target.path} failed an automatic check; approving it needs a comment.",
            "Explain why the output is safe despite the failed check.",
        )
    if request.state in (RequestState.submitted, RequestState.resubmitted):
        move_request(session, request, Move.start_review, actor=who.username)
    session.add(
        ReviewVote(
            request=request,  # also appends the vote to request.votes, which decide() reads
            file_id=file_id,
            round=request.round,
            checker=who.username,
            decision=decision,
            comment=comment,
        )
    )
    session.flush()
    audit.record(
        session,
        actor=who.username,
        action=AuditAction.airlock_vote,
        object_type="export_request",
        object_id=request.id,
        detail={
            "file": target.path,
            "sha256": target.sha256,
            "decision": decision.value,
            "round": request.round,
        },
    )
    outcome = round_outcome(request)
    if outcome.move is not None:
        request.decided_at = utcnow()
        move_request(
            session,
            request,
            outcome.move,
            actor=who.username,
            comment=f"decided by {', '.join(outcome.reviewers)}",
        )
    return request
