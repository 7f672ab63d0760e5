"""Who may do what to an export request, in which state: pure functions, one test each.

They take plain facts (:class:`Actor`, :class:`RequestFacts`) so that each rule can be read
and tested alone; the service layer gathers the facts from the registry and calls these
before every action. Two rules carry the four-eyes principle: nobody reviews a request of a
project they are, or were, a member of (which includes the requester), and a release needs
the policy's number of independent approvals (see :mod:`trenv.airlock.decision`).
"""

from __future__ import annotations

from dataclasses import dataclass

from trenv.airlock.states import EDITABLE, REVIEWABLE
from trenv.store.models import RequestState


@dataclass(frozen=True)
class Actor:
    username: str
    is_checker: bool = False
    is_admin: bool = False
    # Current or past member of the request's project: a colleague is not independent.
    project_member: bool = False
    # The call comes from inside a notebook container (a server token or its network).
    in_container: bool = False


@dataclass(frozen=True)
class RequestFacts:
    requester: str
    state: RequestState
    has_files: bool = True
    project_active: bool = True


def _is_requester(actor: Actor, req: RequestFacts) -> bool:
    return actor.username == req.requester


def may_create(actor: Actor, *, active_member: bool, project_active: bool) -> bool:
    """Only an active member of an open project asks for its outputs."""
    return active_member and project_active


def may_view(actor: Actor, req: RequestFacts) -> bool:
    """The project's members (their own work), checkers and admins see a request."""
    return _is_requester(actor, req) or actor.project_member or actor.is_checker or actor.is_admin


def may_edit(actor: Actor, req: RequestFacts) -> bool:
    """Files and justifications change only by the requester, before or between reviews."""
    return _is_requester(actor, req) and req.state in EDITABLE and req.project_active


def may_submit(actor: Actor, req: RequestFacts) -> bool:
    return (
        _is_requester(actor, req)
        and req.state == RequestState.draft
        and req.has_files
        and req.project_active
    )


def may_resubmit(actor: Actor, req: RequestFacts) -> bool:
    return (
        _is_requester(actor, req)
        and req.state == RequestState.changes_requested
        and req.has_files
        and req.project_active
    )


def may_withdraw(actor: Actor, req: RequestFacts) -> bool:
    return _is_requester(actor, req) and req.state in {
        RequestState.draft,
        RequestState.submitted,
        RequestState.in_review,
        RequestState.changes_requested,
        RequestState.resubmitted,
        RequestState.approved,
    }


def may_review(actor: Actor, req: RequestFacts) -> bool:
    """A checker who is neither the requester nor a (past) member of the project."""
    return (
        actor.is_checker
        and not _is_requester(actor, req)
        and not actor.project_member
        and not actor.in_container
        and req.state in REVIEWABLE
    )


def may_read_file_bytes(actor: Actor, req: RequestFacts) -> bool:
    """The bytes of a request's unreleased files go only to whom the review needs them: an
    independent checker (never the requester, never a current or former member), from
    outside the TRE, while the request waits for or is under review (not as a draft, not
    once decided or withdrawn). That is exactly who may review it now, by design: the
    requester and the project's members see server-rendered previews, and get the bytes
    only in the released bundle (:func:`may_download`); an admin is no exception."""
    return may_review(actor, req)


def may_see_votes(actor: Actor, req: RequestFacts, *, has_voted_on_all: bool) -> bool:
    """Blinded review: a checker sees the other checkers' votes only after casting their
    own on every file; the requester sees them once the checkers have decided."""
    if req.state in {
        RequestState.changes_requested,
        RequestState.resubmitted,
        RequestState.approved,
        RequestState.rejected,
        RequestState.released,
        RequestState.withdrawn,
    }:
        return may_view(actor, req)
    return actor.is_checker and not actor.project_member and has_voted_on_all


def may_release(actor: Actor, req: RequestFacts) -> bool:
    """The requester releases an approved request, from outside the TRE only."""
    return (
        _is_requester(actor, req) and req.state == RequestState.approved and not actor.in_container
    )


def may_download(actor: Actor, req: RequestFacts) -> bool:
    """The released bundle goes to the requester, after login, never into a container."""
    return (
        _is_requester(actor, req) and req.state == RequestState.released and not actor.in_container
    )
