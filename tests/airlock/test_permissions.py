"""One test per permission rule (pure functions of plain facts)."""

from __future__ import annotations

from trenv.airlock import permissions as may
from trenv.airlock.permissions import Actor, RequestFacts
from trenv.store.models import RequestState as S

REQ = RequestFacts(requester="rosa", state=S.submitted)
ROSA = Actor("rosa", project_member=True)
COLLEAGUE = Actor("bob", project_member=True)
CHECKER = Actor("chris", is_checker=True)
OUTSIDER = Actor("eve")


def at(state: S, **kw: object) -> RequestFacts:
    return RequestFacts(requester="rosa", state=state, **kw)  # type: ignore[arg-type]


def test_may_create_needs_an_active_member_of_an_open_project() -> None:
    assert may.may_create(ROSA, active_member=True, project_active=True)
    assert not may.may_create(ROSA, active_member=False, project_active=True)
    assert not may.may_create(ROSA, active_member=True, project_active=False)


def test_may_view_members_checkers_admins_not_outsiders() -> None:
    assert may.may_view(ROSA, REQ) and may.may_view(COLLEAGUE, REQ)
    assert may.may_view(CHECKER, REQ) and may.may_view(Actor("adam", is_admin=True), REQ)
    assert not may.may_view(OUTSIDER, REQ)


def test_may_edit_only_requester_in_draft_or_changes_requested() -> None:
    assert may.may_edit(ROSA, at(S.draft)) and may.may_edit(ROSA, at(S.changes_requested))
    assert not may.may_edit(ROSA, at(S.submitted))
    assert not may.may_edit(COLLEAGUE, at(S.draft))
    assert not may.may_edit(ROSA, at(S.draft, project_active=False))


def test_may_submit_a_draft_with_files() -> None:
    assert may.may_submit(ROSA, at(S.draft))
    assert not may.may_submit(ROSA, at(S.draft, has_files=False))
    assert not may.may_submit(COLLEAGUE, at(S.draft))
    assert not may.may_submit(ROSA, at(S.changes_requested))


def test_may_resubmit_after_changes_requested() -> None:
    assert may.may_resubmit(ROSA, at(S.changes_requested))
    assert not may.may_resubmit(ROSA, at(S.draft))
    assert not may.may_resubmit(COLLEAGUE, at(S.changes_requested))


def test_may_withdraw_only_the_requester_while_open() -> None:
    assert may.may_withdraw(ROSA, at(S.in_review)) and may.may_withdraw(ROSA, at(S.approved))
    assert not may.may_withdraw(ROSA, at(S.released))
    assert not may.may_withdraw(CHECKER, at(S.in_review))


def test_may_review_independent_checkers_only() -> None:
    assert may.may_review(CHECKER, REQ)
    assert not may.may_review(Actor("rosa", is_checker=True, project_member=True), REQ)
    assert not may.may_review(Actor("bob", is_checker=True, project_member=True), REQ)
    assert not may.may_review(OUTSIDER, REQ)
    assert not may.may_review(Actor("chris", is_checker=True, in_container=True), REQ)
    assert not may.may_review(CHECKER, at(S.draft))
    assert not may.may_review(CHECKER, at(S.approved))


def test_may_see_votes_is_blinded_until_own_votes_are_cast() -> None:
    assert not may.may_see_votes(CHECKER, at(S.in_review), has_voted_on_all=False)
    assert may.may_see_votes(CHECKER, at(S.in_review), has_voted_on_all=True)
    assert not may.may_see_votes(ROSA, at(S.in_review), has_voted_on_all=True)
    assert may.may_see_votes(ROSA, at(S.changes_requested), has_voted_on_all=False)
    assert not may.may_see_votes(OUTSIDER, at(S.approved), has_voted_on_all=False)


def test_may_release_the_requester_outside_the_container() -> None:
    assert may.may_release(ROSA, at(S.approved))
    inside = Actor("rosa", project_member=True, in_container=True)
    assert not may.may_release(inside, at(S.approved))
    assert not may.may_release(COLLEAGUE, at(S.approved))
    assert not may.may_release(ROSA, at(S.in_review))


def test_may_download_only_released_by_the_requester_outside() -> None:
    assert may.may_download(ROSA, at(S.released))
    assert not may.may_download(ROSA, at(S.approved))
    assert not may.may_download(Actor("rosa", in_container=True), at(S.released))
    assert not may.may_download(CHECKER, at(S.released))


# --- who gets the bytes of unreleased files (everyone else sees previews) -------------------

REVIEWABLE_STATES = (S.submitted, S.resubmitted, S.in_review)


def test_may_read_file_bytes_an_independent_checker_while_under_review() -> None:
    assert all(may.may_read_file_bytes(CHECKER, at(state)) for state in REVIEWABLE_STATES)


def test_may_read_file_bytes_never_the_requester_in_any_state() -> None:
    requester_checker = Actor("rosa", is_checker=True, project_member=True)
    for state in S:
        assert not may.may_read_file_bytes(ROSA, at(state))
        assert not may.may_read_file_bytes(requester_checker, at(state))


def test_may_read_file_bytes_never_a_current_or_former_project_member() -> None:
    # project_member covers both: a checker who left the project is still not independent
    member_checker = Actor("pete", is_checker=True, project_member=True)
    for state in REVIEWABLE_STATES:
        assert not may.may_read_file_bytes(COLLEAGUE, at(state))
        assert not may.may_read_file_bytes(member_checker, at(state))


def test_may_read_file_bytes_not_before_submission_nor_after_the_review() -> None:
    for state in (S.draft, S.changes_requested, S.approved, S.rejected, S.released, S.withdrawn):
        assert not may.may_read_file_bytes(CHECKER, at(state)), state


def test_may_read_file_bytes_not_an_admin_who_is_no_checker() -> None:
    assert not may.may_read_file_bytes(Actor("adam", is_admin=True), REQ)
    assert not may.may_read_file_bytes(OUTSIDER, REQ)


def test_may_read_file_bytes_not_from_inside_a_container() -> None:
    inside = Actor("chris", is_checker=True, in_container=True)
    assert not may.may_read_file_bytes(inside, REQ)
