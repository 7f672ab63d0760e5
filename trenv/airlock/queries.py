"""What the airlock reads: export requests, their rounds, files and votes, and the lists.

Nothing here writes. The commands in :mod:`trenv.airlock.service`, the release
(:mod:`trenv.airlock.release`), the web pages and API and the CLI read through these
functions, so a question such as "which files are current?" has one answer everywhere.

A command works on a :class:`RequestContext`: the request (locked for the transaction), the
caller's :class:`~trenv.airlock.permissions.Actor` and, derived from the request, its
:class:`~trenv.airlock.permissions.RequestFacts`. The web layer loads it once per
transaction (:func:`load_context`) and passes it on, instead of every step loading the
request and the caller's roles and memberships again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.airlock import permissions as may
from trenv.airlock.checks import DPLedgerEntry
from trenv.airlock.decision import Outcome, Vote, decide
from trenv.airlock.permissions import Actor, RequestFacts
from trenv.airlock.states import EDITABLE
from trenv.airlock.store import ContentStore
from trenv.config import Settings
from trenv.errors import Forbidden, NotFound
from trenv.layout import airlock_store_dir
from trenv.registry.projects import has_been_member
from trenv.registry.users import get_user
from trenv.store.models import (
    Decision,
    ExportRequest,
    GlobalRole,
    PrivacySpend,
    Project,
    RequestFile,
    RequestState,
    ReviewVote,
    utcnow,
)
from trenv.vault.manifest import read_manifest

# --- the request and its caller ---------------------------------------------------------


@dataclass(frozen=True)
class RequestContext:
    """One request as one transaction works on it: loaded once, then passed to each step.

    ``locked``: the row was read ``FOR UPDATE`` (or made in this transaction), as every
    command that changes the request needs, so two checkers' concurrent votes cannot both
    decide a round. The facts are derived from the request on each use because commands
    change it (its state, its files) while the context lives.
    """

    request: ExportRequest
    actor: Actor
    locked: bool = False

    @property
    def facts(self) -> RequestFacts:
        return facts_of(self.request)


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


def load_context(
    session: Session,
    request_id: int,
    username: str,
    *,
    in_container: bool = False,
    lock: bool = False,
) -> RequestContext:
    """The request and the caller's facts; a caller who may not see it gets NotFound.
    ``lock`` for a transaction that will change the request."""
    request = get_request(session, request_id, lock=lock)
    actor = actor_for(session, username, request.project, in_container=in_container)
    if not may.may_view(actor, facts_of(request)):
        # Not Forbidden: whether a request of another project exists is itself not shown.
        raise NotFound(f"no export request {request_id}.", "See the list of your requests.")
    return RequestContext(request, actor, locked=lock)


# --- rounds, files and votes ------------------------------------------------------------


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


# --- what a request refers to -----------------------------------------------------------


def content_store(settings: Settings) -> ContentStore:
    return ContentStore(airlock_store_dir(settings))


def frozen_bytes(settings: Settings, sha256: str) -> bytes:
    """A frozen file's bytes, re-verified against ``sha256``."""
    return content_store(settings).get(sha256)


def provenance(settings: Settings, project: Project) -> dict[str, Any]:
    """What makes the outputs reproducible: the image and the exact data versions."""
    manifest = read_manifest(settings, project.slug)
    image = project.image
    return {
        "image": None if image is None else {"reference": image.reference, "digest": image.digest},
        "published_at": None if manifest is None else manifest.published_at,
        "datasets": []
        if manifest is None
        else [
            {
                "dataset": entry.dataset,
                "version": entry.version,
                "file": entry.file,
                "sha256": entry.sha256,
                "rows": entry.rows,
            }
            for entry in manifest.datasets
        ],
    }


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
