"""The airlock's service layer: every action on an export request, checked and audited.

The web API, the pages and the CLI call only these functions; each one gathers the facts,
asks :mod:`trenv.airlock.permissions`, moves the state through :mod:`trenv.airlock.states`
and writes an audit event in the same transaction.

Files are frozen when they are added to a request: the server reads them from the
requester's workspace for the project (never a path the client resolved), refuses anything
unsafe (:mod:`trenv.airlock.intake`), stores the exact bytes by sha256 and runs the checks
on those bytes. What the checkers see, vote on and release is that frozen copy, however the
workspace changes afterwards. A resubmission starts a new round: the files carry over
unchanged unless the researcher replaces or removes them, and every round stays in the
history with its votes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.airlock import permissions as may
from trenv.airlock.checks import DPLedgerEntry, FileCheck, check_file
from trenv.airlock.decision import Outcome, Vote, decide
from trenv.airlock.differencing import EarlierFile, with_differencing
from trenv.airlock.intake import (
    FrozenFile,
    IntakeLimits,
    read_sidecar,
    read_workspace_file,
    sidecar_paths,
)
from trenv.airlock.permissions import Actor, RequestFacts
from trenv.airlock.states import EDITABLE, Move, next_state
from trenv.airlock.store import ContentStore
from trenv.config import Settings
from trenv.disclosure.policy import load_policy
from trenv.errors import Forbidden, Invalid, NotFound
from trenv.hub.launch import workspace_dir
from trenv.registry.projects import get_project, has_been_member, projects_for_user
from trenv.registry.users import get_user
from trenv.store.models import (
    Decision,
    ExportRequest,
    GlobalRole,
    PrivacySpend,
    Project,
    RequestFile,
    RequestState,
    RequestTransition,
    ReviewVote,
    utcnow,
)

MAX_TITLE = 300


@dataclass(frozen=True)
class FileSpec:
    path: str
    justification: str


def content_store(settings: Settings) -> ContentStore:
    assert settings.airlock_dir is not None
    return ContentStore(settings.airlock_dir)


def intake_limits(settings: Settings) -> IntakeLimits:
    return IntakeLimits(
        max_file_bytes=int(settings.airlock_max_file_mb * 1024 * 1024),
        max_files=settings.airlock_max_files,
    )


# --- facts ------------------------------------------------------------------------------


def actor_for(
    session: Session, username: str, project: Project, *, in_container: bool = False
) -> Actor:
    user = get_user(session, username)
    if not user.active:
        raise Forbidden(f"user {username!r} is deactivated.", "Ask an administrator.")
    roles = user.roles
    return Actor(
        username=username,
        is_checker=GlobalRole.checker in roles,
        is_admin=GlobalRole.admin in roles,
        project_member=has_been_member(session, project, username),
        in_container=in_container,
    )


def facts_of(request: ExportRequest) -> RequestFacts:
    return RequestFacts(
        requester=request.requester,
        state=request.state,
        has_files=bool(working_files(request)),
        project_active=request.project.is_active(),
    )


def get_request(session: Session, request_id: int, *, lock: bool = False) -> ExportRequest:
    query = select(ExportRequest).where(ExportRequest.id == request_id)
    if lock:
        query = query.with_for_update()
    request = session.scalar(query)
    if request is None:
        raise NotFound(f"no export request {request_id}.", "See the list of your requests.")
    return request


def load_for(
    session: Session,
    request_id: int,
    username: str,
    *,
    in_container: bool = False,
    lock: bool = False,
) -> tuple[ExportRequest, Actor]:
    """The request and the caller's facts; a caller who may not see it gets NotFound."""
    request = get_request(session, request_id, lock=lock)
    actor = actor_for(session, username, request.project, in_container=in_container)
    if not may.may_view(actor, facts_of(request)):
        # Not Forbidden: whether a request of another project exists is itself not shown.
        raise NotFound(f"no export request {request_id}.", "See the list of your requests.")
    return request, actor


def working_round(request: ExportRequest) -> int:
    """The round whose files are current: the next one while the request is editable."""
    return request.round + 1 if request.state in EDITABLE else request.round


def round_files(request: ExportRequest, round_: int) -> list[RequestFile]:
    return [f for f in request.files if f.round == round_]


def working_files(request: ExportRequest) -> list[RequestFile]:
    files = round_files(request, working_round(request))
    if not files and request.state == RequestState.changes_requested:
        return round_files(request, request.round)  # not yet edited: the last round's
    return files


def round_votes(request: ExportRequest, round_: int) -> list[ReviewVote]:
    return [v for v in request.votes if v.round == round_]


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
) -> ExportRequest:
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
            "the request needs a title of 1 to 300 characters.",
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
        action="airlock.request.create",
        object_type="export_request",
        object_id=request.id,
        detail={"project": project, "title": title},
    )
    for spec in files:
        add_file(
            session,
            settings,
            request.id,
            actor=actor,
            path=spec.path,
            justification=spec.justification,
            in_container=in_container,
        )
    if submit_now:
        submit(session, settings, request.id, actor=actor, in_container=in_container)
    return request


def _materialise_round(session: Session, request: ExportRequest) -> None:
    """In changes requested, the first edit copies the last round's files into the new one."""
    new_round = working_round(request)
    if request.state != RequestState.changes_requested or round_files(request, new_round):
        return
    for old in round_files(request, request.round):
        session.add(
            RequestFile(
                request=request,
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
    session.refresh(request)


def add_file(
    session: Session,
    settings: Settings,
    request_id: int,
    *,
    actor: str,
    path: str,
    justification: str,
    in_container: bool = False,
) -> RequestFile:
    """Freeze ``path`` from the requester's workspace into the request (replacing a file of
    the same path in the current round) and check it."""
    request, who = load_for(session, request_id, actor, in_container=in_container, lock=True)
    if not may.may_edit(who, facts_of(request)):
        raise Forbidden(
            f"request {request_id} cannot be changed now ({request.state.value}).",
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
            session.delete(old)
    session.flush()
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
        actor=actor,
        action="airlock.file.add",
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
    session.refresh(request)
    return row


def remove_file(
    session: Session, settings: Settings, request_id: int, *, actor: str, path: str
) -> None:
    request, who = load_for(session, request_id, actor, lock=True)
    if not may.may_edit(who, facts_of(request)):
        raise Forbidden(
            f"request {request_id} cannot be changed now ({request.state.value}).",
            "Files can be removed by the requester from a draft or after changes were requested.",
        )
    _materialise_round(session, request)
    matches = [f for f in working_files(request) if f.path == path]
    if not matches:
        raise NotFound(f"{path} is not part of request {request_id}.")
    for row in matches:
        session.delete(row)
    request.updated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="airlock.file.remove",
        object_type="export_request",
        object_id=request.id,
        detail={"path": path},
    )
    session.flush()
    session.refresh(request)


def with_server_differencing(
    session: Session,
    settings: Settings,
    request: ExportRequest,
    frozen: FrozenFile,
    record_bytes: bytes | None,
    check: FileCheck,
) -> FileCheck:
    """Add the server's own differencing verdicts (:mod:`trenv.airlock.differencing`):
    does this table, with the project's earlier tables, pin down a suppressed cell or
    isolate a few people? The notebook's verdict only covers what it saw in the
    workspace; the server sees every table the project released or asks to release."""
    if record_bytes is None and frozen.kind not in ("table", "spreadsheet"):
        return check
    store = content_store(settings)
    earlier = [
        EarlierFile(
            name=f"{f.path} (request {f.request_id})",
            kind=f.kind,
            header_rows=int((f.checks or {}).get("header_rows", 1)),
            read=lambda sha=f.sha256: store.get(sha),
            read_record=(lambda sha=f.record_sha256: store.get(sha)) if f.record_sha256 else None,
        )
        for f in earlier_files(session, request, exclude_path=frozen.path)
    ]
    return with_differencing(
        check,
        path=frozen.path,
        kind=frozen.kind,
        data=frozen.data,
        record=record_bytes,
        earlier=earlier,
        policy=request.policy,
    )


def earlier_files(
    session: Session, request: ExportRequest, *, exclude_path: str
) -> list[RequestFile]:
    """The files a new file of ``request`` is compared with, oldest request first: the
    approved files of the project's released requests, the current files of its other open
    requests (a checker could approve both; of an approved request only its approved
    files), and this request's other files. Rejected and withdrawn requests never leave."""
    query = (
        select(ExportRequest)
        .where(
            ExportRequest.project_id == request.project_id,
            ExportRequest.id != request.id,
            ExportRequest.state.not_in([RequestState.rejected, RequestState.withdrawn]),
        )
        .order_by(ExportRequest.id)
    )
    files: list[RequestFile] = []
    for other in session.scalars(query):
        if other.state in (RequestState.released, RequestState.approved):
            outcome = decision_of(other)
            files += [
                f for f in round_files(other, other.round) if outcome.get(f.id) == Decision.approve
            ]
        else:
            files += working_files(other)
    files += [f for f in working_files(request) if f.path != exclude_path]
    return files


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
        action=f"airlock.request.{move.value}",
        object_type="export_request",
        object_id=request.id,
        detail={"from": before.value, "to": after.value, "round": request.round},
    )


def provenance(settings: Settings, project: Project) -> dict[str, Any]:
    """What makes the outputs reproducible: the image and the exact data versions."""
    assert settings.projects_dir is not None
    manifest_path = settings.projects_dir / project.slug / "data" / "manifest.json"
    datasets: list[dict[str, Any]] = []
    published_at = None
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        published_at = manifest.get("published_at")
        datasets = [
            {k: entry.get(k) for k in ("dataset", "version", "file", "sha256", "rows")}
            for entry in manifest.get("datasets", [])
        ]
    image = project.image
    return {
        "image": None if image is None else {"reference": image.reference, "digest": image.digest},
        "published_at": published_at,
        "datasets": datasets,
    }


def submit(
    session: Session,
    settings: Settings,
    request_id: int,
    *,
    actor: str,
    in_container: bool = False,
    comment: str = "",
) -> ExportRequest:
    """Submit a draft, or resubmit after changes were requested (a new round)."""
    request, who = load_for(session, request_id, actor, in_container=in_container, lock=True)
    facts = facts_of(request)
    if request.state == RequestState.changes_requested:
        if not may.may_resubmit(who, facts):
            raise Forbidden(f"{actor!r} cannot resubmit request {request_id}.")
        _materialise_round(session, request)
        move = Move.resubmit
    else:
        if not may.may_submit(who, facts):
            if request.state == RequestState.draft and not facts.has_files:
                raise Invalid("the request has no files.", "Add at least one file first.")
            if request.state != RequestState.draft:
                next_state(request.state, Move.submit)  # raises the state's own message
            raise Forbidden(f"{actor!r} cannot submit request {request_id}.")
        move = Move.submit
    request.round += 1
    request.submitted_at = utcnow()
    request.provenance = provenance(settings, request.project)
    move_request(session, request, move, actor=actor, comment=comment)
    session.flush()
    return request


def withdraw(
    session: Session, settings: Settings, request_id: int, *, actor: str, comment: str = ""
) -> ExportRequest:
    request, who = load_for(session, request_id, actor, lock=True)
    if not may.may_withdraw(who, facts_of(request)):
        if request.requester == actor:
            next_state(request.state, Move.withdraw)
        raise Forbidden(f"only the requester can withdraw request {request_id}.")
    move_request(session, request, Move.withdraw, actor=actor, comment=comment)
    return request


# --- review -----------------------------------------------------------------------------


def vote(
    session: Session,
    settings: Settings,
    request_id: int,
    *,
    actor: str,
    file_id: int,
    decision: Decision,
    comment: str = "",
    in_container: bool = False,
) -> ExportRequest:
    """One checker's vote on one file; decides the round when enough checkers are done."""
    request, who = load_for(session, request_id, actor, in_container=in_container, lock=True)
    if not may.may_review(who, facts_of(request)):
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
        move_request(session, request, Move.start_review, actor=actor)
    session.add(
        ReviewVote(
            request=request,
            file_id=file_id,
            round=request.round,
            checker=actor,
            decision=decision,
            comment=comment,
        )
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="airlock.vote",
        object_type="export_request",
        object_id=request.id,
        detail={
            "file": target.path,
            "sha256": target.sha256,
            "decision": decision.value,
            "round": request.round,
        },
    )
    session.refresh(request)
    outcome = round_outcome(request)
    if outcome.move is not None:
        request.decided_at = utcnow()
        move_request(
            session,
            request,
            outcome.move,
            actor=actor,
            comment=f"decided by {', '.join(outcome.reviewers)}",
        )
    return request


def votes_of(request: ExportRequest, round_: int) -> list[Vote]:
    """The round's votes as the decision rule reads them, oldest first."""
    return [Vote(v.file_id, v.checker, v.decision, v.comment) for v in round_votes(request, round_)]


def round_outcome(request: ExportRequest) -> Outcome:
    """The decision rule applied to the request's latest round."""
    file_ids = [f.id for f in round_files(request, request.round)]
    return decide(file_ids, votes_of(request, request.round), request.approvals_required)


def decision_of(request: ExportRequest) -> dict[int, Decision | None]:
    """Per-file outcome of the request's latest round (None while undecided)."""
    return round_outcome(request).files


# --- lists ------------------------------------------------------------------------------


def queue(
    session: Session,
    *,
    checker: str,
    project: str | None = None,
    states: Sequence[RequestState] = (
        RequestState.submitted,
        RequestState.resubmitted,
        RequestState.in_review,
    ),
    older_than: dt.timedelta | None = None,
) -> list[ExportRequest]:
    """Requests waiting for review that ``checker`` may review, oldest submission first."""
    query = select(ExportRequest).where(ExportRequest.state.in_(list(states)))
    if project:
        query = query.join(Project).where(Project.slug == project)
    query = query.order_by(ExportRequest.submitted_at, ExportRequest.id)
    out = []
    cutoff = utcnow() - older_than if older_than else None
    for request in session.scalars(query):
        who = actor_for(session, checker, request.project)
        if not (who.is_checker or who.is_admin) or who.project_member:
            continue
        if request.requester == checker:
            continue
        if cutoff and request.submitted_at and _aware(request.submitted_at) > cutoff:
            continue
        out.append(request)
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def requests_of(session: Session, username: str, project: str | None = None) -> list[ExportRequest]:
    """The requests of the projects ``username`` belongs to, newest first."""
    user = get_user(session, username)
    slugs = [m.project.slug for m in user.memberships]
    if project is not None:
        slugs = [s for s in slugs if s == project]
    if not slugs:
        return []
    query = (
        select(ExportRequest)
        .join(Project)
        .where(Project.slug.in_(slugs))
        .order_by(ExportRequest.id.desc())
    )
    return list(session.scalars(query))


def released_for_project(session: Session, project: Project) -> list[ExportRequest]:
    query = (
        select(ExportRequest)
        .where(
            ExportRequest.project_id == project.id,
            ExportRequest.state == RequestState.released,
        )
        .order_by(ExportRequest.released_at.desc())
    )
    return list(session.scalars(query))


# --- DP ledger --------------------------------------------------------------------------


def dp_ledger_entry(session: Session, spend_id: int) -> DPLedgerEntry | None:
    spend = session.get(PrivacySpend, spend_id)
    if spend is None:
        return None
    from trenv.privacy.ledger import from_micro

    return DPLedgerEntry(
        spend_id=spend.id,
        project=session.get(Project, spend.budget.project_id).slug,  # type: ignore[union-attr]
        dataset=spend.budget.dataset,
        state=spend.state.value,
        plan_hash=spend.plan_hash,
        rho=from_micro(spend.amount_micro),
        release=spend.release,
    )


def frozen_bytes(settings: Settings, sha256: str) -> bytes:
    return content_store(settings).get(sha256)


def frozen_path(settings: Settings, sha256: str) -> Path:
    return content_store(settings).path(sha256)
