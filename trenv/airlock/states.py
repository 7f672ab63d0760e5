"""The export request's life as an explicit state machine.

Every state change goes through :func:`next_state`, which looks the move up in
:data:`TRANSITIONS`; anything not in the table is refused. Who may make a move is decided
separately, by the pure functions in :mod:`trenv.airlock.permissions`.

::

    draft --submit--> submitted --first vote--> in_review --decide--> approved --release--> released
                                                    |  `--decide--> rejected
                                                    `--decide--> changes_requested
    changes_requested --resubmit--> resubmitted --first vote--> in_review
    withdraw: from any state that is not final (draft ... approved)
"""

from __future__ import annotations

import enum

from trenv.errors import Conflict
from trenv.store.models import RequestState


class Move(enum.StrEnum):
    submit = "submit"
    start_review = "start_review"
    approve = "approve"
    reject = "reject"
    request_changes = "request_changes"
    resubmit = "resubmit"
    withdraw = "withdraw"
    release = "release"


S = RequestState
TRANSITIONS: dict[tuple[RequestState, Move], RequestState] = {
    (S.draft, Move.submit): S.submitted,
    (S.submitted, Move.start_review): S.in_review,
    (S.resubmitted, Move.start_review): S.in_review,
    (S.in_review, Move.approve): S.approved,
    (S.in_review, Move.reject): S.rejected,
    (S.in_review, Move.request_changes): S.changes_requested,
    (S.changes_requested, Move.resubmit): S.resubmitted,
    (S.approved, Move.release): S.released,
    (S.draft, Move.withdraw): S.withdrawn,
    (S.submitted, Move.withdraw): S.withdrawn,
    (S.in_review, Move.withdraw): S.withdrawn,
    (S.changes_requested, Move.withdraw): S.withdrawn,
    (S.resubmitted, Move.withdraw): S.withdrawn,
    (S.approved, Move.withdraw): S.withdrawn,
}

# The researcher may change the request's files and justifications only here.
EDITABLE: frozenset[RequestState] = frozenset({S.draft, S.changes_requested})
# Checkers vote only while the request waits for, or is under, review.
REVIEWABLE: frozenset[RequestState] = frozenset({S.submitted, S.resubmitted, S.in_review})
# Nothing happens to a request in these states any more.
FINAL: frozenset[RequestState] = frozenset({S.rejected, S.released, S.withdrawn})


def next_state(state: RequestState, move: Move) -> RequestState:
    """The state after ``move``, or :class:`Conflict` naming the moves that are possible."""
    try:
        return TRANSITIONS[(state, move)]
    except KeyError:
        possible = sorted(m.value for (s, m) in TRANSITIONS if s == state)
        raise Conflict(
            f"a request that is {state.value.replace('_', ' ')} cannot be {_past(move)}",
            f"possible now: {', '.join(possible)}" if possible else "the request is final",
        ) from None


def _past(move: Move) -> str:
    return {
        Move.submit: "submitted",
        Move.start_review: "taken into review",
        Move.approve: "approved",
        Move.reject: "rejected",
        Move.request_changes: "sent back for changes",
        Move.resubmit: "resubmitted",
        Move.withdraw: "withdrawn",
        Move.release: "released",
    }[move]
