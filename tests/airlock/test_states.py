"""The request state machine: every listed move works, every other move is refused."""

from __future__ import annotations

import itertools

import pytest

from trenv.airlock.states import EDITABLE, FINAL, REVIEWABLE, TRANSITIONS, Move, next_state
from trenv.errors import Conflict
from trenv.store.models import RequestState as S


def test_the_happy_path_reaches_released() -> None:
    state = S.draft
    for move in (Move.submit, Move.start_review, Move.approve, Move.release):
        state = next_state(state, move)
    assert state == S.released


def test_changes_requested_loops_back_through_resubmitted() -> None:
    state = next_state(S.in_review, Move.request_changes)
    assert state == S.changes_requested
    state = next_state(state, Move.resubmit)
    assert state == S.resubmitted
    assert next_state(state, Move.start_review) == S.in_review


@pytest.mark.parametrize("state,move", list(itertools.product(S, Move)))
def test_only_listed_moves_are_possible(state: S, move: Move) -> None:
    if (state, move) in TRANSITIONS:
        assert next_state(state, move) == TRANSITIONS[(state, move)]
    else:
        with pytest.raises(Conflict) as err:
            next_state(state, move)
        assert state.value.replace("_", " ") in err.value.problem


def test_final_states_have_no_way_out() -> None:
    assert {s for (s, _) in TRANSITIONS}.isdisjoint(FINAL)


def test_an_approved_request_cannot_skip_to_released_without_approval() -> None:
    for state in S:
        if state != S.approved:
            assert (state, Move.release) not in TRANSITIONS


def test_every_open_state_can_be_withdrawn() -> None:
    open_states = set(S) - FINAL
    assert {s for (s, m) in TRANSITIONS if m == Move.withdraw} == open_states


def test_editable_and_reviewable_do_not_overlap() -> None:
    assert EDITABLE.isdisjoint(REVIEWABLE)
