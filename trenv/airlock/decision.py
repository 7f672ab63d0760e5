"""How checkers' votes become a decision: pure, so the rule can be read and tested alone.

A checker's latest vote on a file counts. The round is decided once ``approvals_required``
independent checkers have each voted on every file. Per file, the strictest vote wins
(reject > request changes > approve), so one checker's objection is never outvoted. The
request is then sent back if any file needs changes, rejected if every file is rejected,
and otherwise approved: the release holds the approved files, and the disclosure record
lists the rejected ones with the reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trenv.airlock.states import Move
from trenv.store.models import Decision

_SEVERITY = {Decision.approve: 0, Decision.request_changes: 1, Decision.reject: 2}


@dataclass(frozen=True)
class Vote:
    file_id: int
    checker: str
    decision: Decision
    comment: str = ""


@dataclass(frozen=True)
class Outcome:
    complete: bool
    reviewers: tuple[str, ...]  # checkers who voted on every file
    files: dict[int, Decision | None]  # None: not decided yet
    move: Move | None  # what the request does now, if complete


def latest_votes(votes: Iterable[Vote]) -> dict[tuple[int, str], Vote]:
    """Each checker's current vote per file (``votes`` oldest first)."""
    current: dict[tuple[int, str], Vote] = {}
    for vote in votes:
        current[(vote.file_id, vote.checker)] = vote
    return current


def reviewers_done(file_ids: Sequence[int], votes: Iterable[Vote]) -> tuple[str, ...]:
    current = latest_votes(votes)
    checkers = sorted({checker for (_, checker) in current})
    return tuple(c for c in checkers if all((f, c) in current for f in file_ids))


def decide(file_ids: Sequence[int], votes: Sequence[Vote], approvals_required: int) -> Outcome:
    current = latest_votes(votes)
    done = reviewers_done(file_ids, votes)
    complete = bool(file_ids) and len(done) >= approvals_required
    files: dict[int, Decision | None] = {}
    for file_id in file_ids:
        cast = [current[(file_id, c)].decision for c in done]
        if not complete:
            files[file_id] = None
        else:
            files[file_id] = max(cast, key=_SEVERITY.__getitem__)
    move: Move | None = None
    if complete:
        outcomes = set(files.values())
        if Decision.request_changes in outcomes:
            move = Move.request_changes
        elif outcomes == {Decision.reject}:
            move = Move.reject
        else:
            move = Move.approve
    return Outcome(complete=complete, reviewers=done, files=files, move=move)
