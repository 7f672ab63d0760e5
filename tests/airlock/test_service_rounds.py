"""Service behaviours the web layer relies on: rounds, the queue's independence, votes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv.airlock import queries, service
from trenv.airlock.queries import RequestContext
from trenv.airlock.release import release
from trenv.config import Settings
from trenv.errors import Forbidden
from trenv.layout import workspace_dir
from trenv.registry import projects, users
from trenv.store.models import Decision, GlobalRole, MemberRole, RequestState

Tx = Callable[[], AbstractContextManager[Session]]
CSV = b"region,n\nnorth,120\nsouth,150\n"


@pytest.fixture
def ws(settings: Settings, tx: Tx) -> Iterator[Path]:
    with tx() as session:
        populate(session)
        users.add_user(session, actor=OPERATOR, username="kim", roles={GlobalRole.checker})
        users.add_user(session, actor=OPERATOR, username="pete", roles={GlobalRole.checker})
        projects.add_member(session, actor=OPERATOR, slug="reoffending", username="pete",
                            role=MemberRole.researcher)  # fmt: skip
    root = workspace_dir(settings, "reoffending", "rita")
    (root / "outputs").mkdir(parents=True)
    for name in ("a.csv", "b.csv"):
        (root / "outputs" / name).write_bytes(CSV)
    yield root


def submitted(session: Session, settings: Settings) -> int:
    files = [service.FileSpec(f"outputs/{n}", "why") for n in ("a.csv", "b.csv")]
    ctx = service.create_request(session, settings, actor="rita", project="reoffending",
                                 title="t", files=files, submit_now=True)  # fmt: skip
    return ctx.request.id


def as_(session: Session, rid: int, who: str, *, in_container: bool = False) -> RequestContext:
    """Request ``rid`` loaded and locked for a command by ``who``."""
    return queries.load_context(session, rid, who, in_container=in_container, lock=True)


def vote_all(session: Session, settings: Settings, rid: int, checker: str, d: Decision) -> None:
    req = queries.get_request(session, rid)
    for f in queries.round_files(req, req.round):
        service.vote(session, as_(session, rid, checker), file_id=f.id, decision=d, comment="c")


def test_changes_requested_keeps_round_files_until_edited(
    ws: Path, settings: Settings, session: Session
) -> None:
    rid = submitted(session, settings)
    vote_all(session, settings, rid, "chris", Decision.request_changes)
    with pytest.raises(Forbidden, match="only output checkers"):
        vote_all(session, settings, rid, "adam", Decision.approve)  # an admin is no checker
    vote_all(session, settings, rid, "kim", Decision.approve)
    req = queries.get_request(session, rid)
    assert req.state == RequestState.changes_requested
    first = queries.working_files(req)
    assert {f.round for f in first} == {1}  # not edited yet: the last round's files
    assert set(queries.decision_of(req).values()) == {Decision.request_changes}
    service.remove_file(session, as_(session, rid, "rita"), path="outputs/b.csv")
    req = queries.get_request(session, rid)
    assert [(f.round, f.path) for f in queries.working_files(req)] == [(2, "outputs/a.csv")]
    assert len(queries.round_files(req, 1)) == 2  # round 1 stays whole in the history
    service.submit(session, settings, as_(session, rid, "rita"))
    assert queries.get_request(session, rid).round == 2


def test_queue_leaves_out_members_and_the_requester(
    ws: Path, settings: Settings, session: Session
) -> None:
    rid = submitted(session, settings)
    assert [r.id for r in queries.queue(session, checker="chris")] == [rid]
    assert queries.queue(session, checker="pete") == []  # a member of the project
    assert queries.queue(session, checker="rita") == []  # not a checker
    old = queries.queue(session, checker="chris", older_than=dt.timedelta(hours=1))
    assert old == []


def test_decision_waits_for_the_required_number_of_checkers(
    ws: Path, settings: Settings, session: Session
) -> None:
    rid = submitted(session, settings)
    vote_all(session, settings, rid, "chris", Decision.approve)
    req = queries.get_request(session, rid)
    assert set(queries.decision_of(req).values()) == {None}
    vote_all(session, settings, rid, "kim", Decision.approve)
    req = queries.get_request(session, rid)
    assert req.state == RequestState.approved
    release(session, settings, as_(session, rid, "rita"))
    assert [r.id for r in queries.released_for_project(session, req.project)] == [rid]


def test_a_vote_from_inside_a_container_is_refused(
    ws: Path, settings: Settings, session: Session
) -> None:
    rid = submitted(session, settings)
    req = queries.get_request(session, rid)
    with pytest.raises(Forbidden, match="notebook container"):
        service.vote(session, as_(session, rid, "chris", in_container=True),
                     file_id=req.files[0].id, decision=Decision.approve)  # fmt: skip
