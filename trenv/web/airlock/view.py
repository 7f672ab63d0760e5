"""What a caller sees of an export request: the JSON models and how they are filled.

The API returns these models and the pages render them, so the two never disagree about
what is shown to whom. Blinded review lives here: other checkers' votes (and the per-file
outcome they add up to) appear only when :func:`trenv.airlock.permissions.may_see_votes`
says so; a checker always sees their own votes. The number of completed reviews is shown
instead of the number of approvals while a request is under review, because counting
approvals would tell the second checker how the first one voted.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from trenv.airlock import permissions as may
from trenv.airlock import queries
from trenv.airlock.checks import FileCheck
from trenv.airlock.decision import reviewers_done
from trenv.airlock.permissions import Actor
from trenv.airlock.states import REVIEWABLE
from trenv.store.models import Decision, ExportRequest, RequestFile, RequestState, utcnow

# What a caller may do next, as listed in RequestDetail.allowed.
ACTIONS = ("edit", "submit", "resubmit", "withdraw", "review", "release", "download")


class FindingOut(BaseModel):
    rule_id: str
    status: str
    message: str
    cells: list[tuple[int, int]] = Field(
        default_factory=list, description="(row, column) of the flagged cells, 0-based"
    )


class CheckOut(BaseModel):
    status: str = Field(description="pass, review or fail: the worst finding")
    summary: str
    findings: list[FindingOut]


class FileOut(BaseModel):
    id: int
    round: int
    path: str
    sha256: str
    size: int
    media_type: str
    kind: str
    justification: str
    check: CheckOut
    outcome: Decision | None = Field(
        None, description="the checkers' decision on this file, once decided and visible"
    )


class VoteOut(BaseModel):
    file_id: int
    path: str
    round: int
    checker: str
    decision: Decision
    comment: str
    at: dt.datetime


class EventOut(BaseModel):
    from_state: str
    to_state: str
    actor: str
    comment: str
    at: dt.datetime


class RequestSummary(BaseModel):
    id: int
    project: str
    requester: str
    title: str
    state: RequestState
    round: int = Field(description="submissions so far")
    approvals_required: int
    reviews_done: int = Field(
        description="checkers who have voted on every file of the current round"
    )
    files: int
    worst_check: str = Field(description="the worst automatic check status of the files")
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    updated_at: dt.datetime
    age_hours: float = Field(description="hours since submission (since creation for drafts)")


class RequestDetail(RequestSummary):
    policy: str
    policy_version: str
    decided_at: dt.datetime | None
    released_at: dt.datetime | None
    bundle_sha256: str | None
    file_list: list[FileOut] = Field(description="the files of the current round")
    earlier_files: list[FileOut] = Field(description="files of earlier rounds, for history")
    votes_visible: bool = Field(description="whether all checkers' votes are shown")
    votes: list[VoteOut] = Field(description="visible votes: all, or only the caller's own")
    history: list[EventOut]
    allowed: list[str] = Field(description=f"what the caller may do now: any of {ACTIONS}")


def aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they are stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def check_of(row: RequestFile) -> FileCheck:
    """The stored server-side check of a file (a file without one shows as needing review)."""
    try:
        return FileCheck.model_validate(row.checks)
    except ValueError:
        return FileCheck(
            kind=row.kind, status="review", findings=[], summary="No check result stored."
        )


def reviews_done(request: ExportRequest) -> int:
    if request.round == 0:
        return 0
    file_ids = [f.id for f in queries.round_files(request, request.round)]
    return len(reviewers_done(file_ids, queries.votes_of(request, request.round)))


def has_voted_on_all(request: ExportRequest, username: str) -> bool:
    file_ids = [f.id for f in queries.round_files(request, request.round)]
    return username in reviewers_done(file_ids, queries.votes_of(request, request.round))


def votes_visible(request: ExportRequest, actor: Actor) -> bool:
    return may.may_see_votes(
        actor, queries.facts_of(request), has_voted_on_all=has_voted_on_all(request, actor.username)
    )


def allowed(request: ExportRequest, actor: Actor) -> list[str]:
    f = queries.facts_of(request)
    rules = {
        "edit": may.may_edit,
        "submit": may.may_submit,
        "resubmit": may.may_resubmit,
        "withdraw": may.may_withdraw,
        "review": may.may_review,
        "release": may.may_release,
        "download": may.may_download,
    }
    out = [name for name, rule in rules.items() if rule(actor, f)]
    if "download" in out and request.bundle_sha256 is None:
        out.remove("download")
    return out


def age_hours(request: ExportRequest, now: dt.datetime | None = None) -> float:
    start = aware(request.submitted_at or request.created_at)
    return max(0.0, ((now or utcnow()) - start).total_seconds() / 3600)


def summary(request: ExportRequest) -> RequestSummary:
    files = queries.working_files(request)
    statuses = [check_of(f).status for f in files]
    worst = "fail" if "fail" in statuses else "review" if "review" in statuses else "pass"
    return RequestSummary(
        id=request.id,
        project=request.project.slug,
        requester=request.requester,
        title=request.title,
        state=request.state,
        round=request.round,
        approvals_required=request.approvals_required,
        reviews_done=reviews_done(request),
        files=len(files),
        worst_check=worst if files else "pass",
        created_at=aware(request.created_at),
        submitted_at=aware(request.submitted_at) if request.submitted_at else None,
        updated_at=aware(request.updated_at),
        age_hours=round(age_hours(request), 2),
    )


def file_out(row: RequestFile, outcome: Decision | None = None) -> FileOut:
    check = check_of(row)
    return FileOut(
        id=row.id,
        round=row.round,
        path=row.path,
        sha256=row.sha256,
        size=row.size,
        media_type=row.media_type,
        kind=row.kind,
        justification=row.justification,
        check=CheckOut(
            status=check.status,
            summary=check.summary,
            findings=[FindingOut(**f.model_dump()) for f in check.findings],
        ),
        outcome=outcome,
    )


def detail(request: ExportRequest, actor: Actor) -> RequestDetail:
    visible = votes_visible(request, actor)
    outcomes = queries.decision_of(request) if visible else {}
    current = queries.working_files(request)
    current_ids = {f.id for f in current}
    paths = {f.id: f.path for f in request.files}
    votes = [
        VoteOut(
            file_id=v.file_id,
            path=paths.get(v.file_id, "?"),
            round=v.round,
            checker=v.checker,
            decision=v.decision,
            comment=v.comment,
            at=aware(v.created_at),
        )
        for v in request.votes
        # Earlier, decided rounds are history everyone who may view the request may read.
        if visible or v.checker == actor.username or _round_decided(request, v.round)
    ]
    return RequestDetail(
        **summary(request).model_dump(),
        policy=request.policy,
        policy_version=request.policy_version,
        decided_at=aware(request.decided_at) if request.decided_at else None,
        released_at=aware(request.released_at) if request.released_at else None,
        bundle_sha256=request.bundle_sha256,
        file_list=[file_out(f, outcomes.get(f.id)) for f in current],
        earlier_files=[file_out(f) for f in request.files if f.id not in current_ids],
        votes_visible=visible,
        votes=votes,
        history=[
            EventOut(
                from_state=t.from_state,
                to_state=t.to_state,
                actor=t.actor,
                comment=t.comment,
                at=aware(t.at),
            )
            for t in request.transitions
        ],
        allowed=allowed(request, actor),
    )


def _round_decided(request: ExportRequest, round_: int) -> bool:
    """Rounds before the current one were decided (they ended in a request for changes)."""
    if round_ < request.round:
        return True
    return request.state not in REVIEWABLE
