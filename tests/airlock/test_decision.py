"""Votes become a decision only with enough independent reviewers; objections win."""

from __future__ import annotations

from trenv.airlock.decision import Vote, decide, reviewers_done
from trenv.airlock.states import Move
from trenv.store.models import Decision as D


def v(file_id: int, checker: str, decision: D) -> Vote:
    return Vote(file_id, checker, decision)


def test_one_approval_is_not_enough() -> None:
    out = decide([1, 2], [v(1, "a", D.approve), v(2, "a", D.approve)], 2)
    assert not out.complete and out.move is None and out.files == {1: None, 2: None}


def test_two_checkers_approving_every_file_approve() -> None:
    votes = [v(f, c, D.approve) for c in "ab" for f in (1, 2)]
    out = decide([1, 2], votes, 2)
    assert out.complete and out.move == Move.approve and out.reviewers == ("a", "b")


def test_a_checker_who_skipped_a_file_does_not_count() -> None:
    votes = [v(1, "a", D.approve), v(2, "a", D.approve), v(1, "b", D.approve)]
    assert reviewers_done([1, 2], votes) == ("a",)
    assert decide([1, 2], votes, 2).move is None


def test_any_request_for_changes_sends_it_back() -> None:
    votes = [v(1, "a", D.approve), v(1, "b", D.request_changes)]
    assert decide([1], votes, 2).move == Move.request_changes


def test_one_rejection_is_never_outvoted() -> None:
    votes = [v(1, "a", D.approve), v(1, "b", D.approve), v(1, "c", D.reject)]
    out = decide([1], votes, 2)
    assert out.files == {1: D.reject} and out.move == Move.reject


def test_mixed_approved_and_rejected_files_release_the_approved() -> None:
    votes = [v(1, c, D.approve) for c in "ab"] + [v(2, c, D.reject) for c in "ab"]
    out = decide([1, 2], votes, 2)
    assert out.move == Move.approve and out.files == {1: D.approve, 2: D.reject}


def test_the_latest_vote_of_a_checker_counts() -> None:
    votes = [v(1, "a", D.reject), v(1, "a", D.approve), v(1, "b", D.approve)]
    assert decide([1], votes, 2).move == Move.approve


def test_no_files_never_decides() -> None:
    assert not decide([], [], 1).complete
