"""The airlock's JSON API: every refusal, the happy path, the changes loop, blinded votes."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.world import OPERATOR
from tests.web.airlock_world import (
    API,
    INSIDE,
    PNG_1PX,
    SAFE_CSV,
    SMALL_CSV,
    Tx,
    World,
    build_world,
)
from trenv import audit
from trenv.airlock.bundle import verify_bundle
from trenv.airlock.queries import frozen_bytes
from trenv.config import Settings
from trenv.registry import projects, users
from trenv.store.models import MemberRole


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def problem(reply: httpx.Response, status: int, *needles: str) -> str:
    assert reply.status_code == status, reply.text
    text: str = reply.json()["problem"]
    for needle in needles:
        assert needle in text, text
    return text


# --- creating ---------------------------------------------------------------------------


def test_a_notebook_server_creates_and_submits_for_its_own_project(w: World) -> None:
    req = w.submitted(("outputs/table.csv", SAFE_CSV), ("outputs/fig.png", PNG_1PX))
    assert req["project"] == "reoffending" and req["requester"] == "rita"
    assert req["state"] == "submitted" and req["round"] == 1 and req["files"] == 2
    assert {f["path"] for f in req["file_list"]} == {"outputs/table.csv", "outputs/fig.png"}
    table = next(f for f in req["file_list"] if f["path"] == "outputs/table.csv")
    assert table["check"]["status"] == "pass" and table["justification"] == "for the paper"
    assert req["allowed"] == ["withdraw"]  # release and download never from a container
    listed = w.call("GET", "/requests", "srv-rita").json()
    assert [r["id"] for r in listed] == [req["id"]]
    assert (
        "/services/trenv/api/airlock/requests"
        in w.outside.get("/services/trenv/api/openapi.json").json()["paths"]
    )


def test_a_server_token_cannot_name_another_project(w: World) -> None:
    problem(w.create(project="other"), 403, "works on project 'reoffending'")


def test_a_server_token_without_a_running_server_is_refused(w: World) -> None:
    problem(w.create("srv-adam"), 403, "no running notebook server")


def test_from_the_browser_the_project_is_named_and_must_be_the_users(w: World) -> None:
    problem(w.create("t-rita"), 400, "name the project")
    problem(w.create("t-olga", project="reoffending"), 403, "cannot ask for outputs")
    created = w.create("t-rita", project="reoffending")
    assert created.status_code == 201 and created.json()["state"] == "draft"


def test_a_former_member_cannot_create_requests(w: World, tx: Tx) -> None:
    with tx() as session:
        projects.remove_member(session, actor=OPERATOR, slug="reoffending", username="nora")
    problem(w.create("t-nora", project="reoffending"), 403)


# --- refusals of files --------------------------------------------------------------------


@pytest.fixture
def draft(w: World) -> int:
    reply = w.create()
    assert reply.status_code == 201
    request_id: int = reply.json()["id"]
    return request_id


def add(w: World, request_id: int, path: str, token: str = "srv-rita") -> httpx.Response:
    body = {"path": path, "justification": "needed"}
    return w.call("POST", f"/requests/{request_id}/files", token, json=body)


def test_a_symlink_to_a_data_file_outside_the_workspace_is_refused(
    w: World, draft: int, tmp_path: Path
) -> None:
    data = tmp_path / "data" / "convictions.csv"  # what /data holds in a container
    data.parent.mkdir()
    data.write_bytes(b"person_pseudonym,offence\np00001,theft\n")
    link = w.workspace() / "outputs" / "leak.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(data)
    problem(add(w, draft, "outputs/leak.csv"), 400, "link")
    dir_link = w.workspace() / "data"
    dir_link.symlink_to(data.parent)
    problem(add(w, draft, "data/convictions.csv"), 400, "link")


@pytest.mark.parametrize(
    "path", ["../rita/outputs/table.csv", "outputs/../../olga/x.csv", "/data/convictions.csv"]
)
def test_paths_leaving_the_workspace_are_refused(w: World, draft: int, path: str) -> None:
    w.write("outputs/table.csv", SAFE_CSV)
    reply = add(w, draft, path)
    assert reply.status_code == 400
    assert reply.json()["fix"]


def test_an_oversized_file_is_refused(w: World, draft: int, settings: Settings) -> None:
    settings.airlock_max_file_mb = 0.001  # about 1 KB; the app reads the same settings
    w.write("outputs/big.csv", b"region,n\n" + b"north,120\n" * 500)
    problem(add(w, draft, "outputs/big.csv"), 400, "larger than")


@pytest.mark.parametrize("name", ["outputs/rows.parquet", "outputs/run.sh", "outputs/x.html"])
def test_disallowed_types_are_refused(w: World, draft: int, name: str) -> None:
    w.write(name, b"whatever")
    problem(add(w, draft, name), 400)


def test_a_png_that_is_really_a_table_is_refused(w: World, draft: int) -> None:
    w.write("outputs/fig.png", SAFE_CSV)
    problem(add(w, draft, "outputs/fig.png"), 400)


def test_only_the_requester_edits_and_only_a_draft(w: World, draft: int) -> None:
    w.write("outputs/table.csv", SAFE_CSV)
    problem(add(w, draft, "outputs/table.csv", "t-nora"), 403)  # a colleague sees, not edits
    problem(add(w, draft, "outputs/table.csv", "t-olga"), 404)  # another project: not even seen
    assert add(w, draft, "outputs/table.csv").status_code == 200
    removed = w.call("DELETE", f"/requests/{draft}/files", "srv-rita",
                     params={"path": "outputs/table.csv"})  # fmt: skip
    assert removed.status_code == 200 and removed.json()["files"] == 0
    problem(w.call("POST", f"/requests/{draft}/submit", "srv-rita"), 400, "no files")
    assert add(w, draft, "outputs/table.csv").status_code == 200
    submitted = w.call("POST", f"/requests/{draft}/submit", "srv-rita")
    assert submitted.json()["state"] == "submitted"
    problem(add(w, draft, "outputs/table.csv"), 403, "cannot be changed now")


# --- review refusals ----------------------------------------------------------------------


def test_self_review_is_refused(w: World) -> None:
    # pete is a checker and works on the project: his own request is doubly not his to review
    w.write("outputs/t.csv", SAFE_CSV, user="pete")
    files = [{"path": "outputs/t.csv", "justification": "x"}]
    reply = w.create("t-pete", project="reoffending", files=files, submit=True)
    req = reply.json()
    problem(w.vote("pete", req["id"], req["file_list"][0]["id"]), 403, "your own request")


def test_review_by_a_project_member_is_refused(w: World) -> None:
    req = w.submitted()
    problem(w.vote("pete", req["id"], req["file_list"][0]["id"]), 403, "member of project")


def test_review_by_a_former_project_member_is_refused(w: World) -> None:
    req = w.submitted()
    problem(w.vote("fred", req["id"], req["file_list"][0]["id"]), 403, "were a member")


def test_review_without_the_review_scope_is_refused(w: World) -> None:
    req = w.submitted()
    problem(w.vote("vic", req["id"], req["file_list"][0]["id"]), 403, "custom:trenv:review")
    problem(w.call("GET", "/queue", "t-vic"), 403, "custom:trenv:review")
    problem(w.call("GET", "/queue", "t-rita"), 403, "custom:trenv:review")


def test_review_from_inside_a_container_is_refused(w: World) -> None:
    req = w.submitted()
    fid = req["file_list"][0]["id"]
    problem(w.vote("chris", req["id"], fid, inside=True), 403, "notebook container")
    problem(w.call("GET", "/queue", "t-chris", inside=True), 403, "notebook container")


def test_a_comment_is_needed_to_approve_a_failed_file_and_to_object(w: World) -> None:
    req = w.submitted(("outputs/small.csv", SMALL_CSV))
    f = req["file_list"][0]
    assert f["check"]["status"] == "fail"
    assert f["check"]["findings"][0]["cells"] == [[1, 1]]
    problem(w.vote("chris", req["id"], f["id"]), 400, "needs a comment")
    problem(w.vote("chris", req["id"], f["id"], "reject"), 400, "comment is required")
    ok = w.vote("chris", req["id"], f["id"], comment="2 is a count of offences, not people")
    assert ok.status_code == 200 and ok.json()["state"] == "in_review"


def test_release_after_one_approval_is_refused(w: World) -> None:
    req = w.submitted()
    w.approve_all(req, "chris")
    problem(w.call("POST", f"/requests/{req['id']}/release", "t-rita"), 409, "in review")
    problem(w.call("GET", f"/requests/{req['id']}/download", "t-rita"), 403)


def test_a_checker_cannot_vote_twice_to_make_two_approvals(w: World) -> None:
    req = w.submitted()
    w.approve_all(req, "chris")
    again = w.approve_all(req, "chris")
    assert again["state"] == "in_review" and again["reviews_done"] == 1


# --- blinded review -----------------------------------------------------------------------


def test_votes_are_blinded_until_a_checker_has_voted_on_every_file(w: World) -> None:
    req = w.submitted(("outputs/a.csv", SAFE_CSV), ("outputs/b.csv", SAFE_CSV))
    rid = req["id"]
    a, b = (f["id"] for f in req["file_list"])
    w.vote("chris", rid, a, comment="chris on a")
    w.vote("chris", rid, b, comment="chris on b")
    # kim has not voted: she sees no votes at all, and the count of reviews, not approvals
    kim = w.call("GET", f"/requests/{rid}", "t-kim").json()
    assert kim["votes_visible"] is False and kim["votes"] == []
    assert kim["reviews_done"] == 1
    assert all(f["outcome"] is None for f in kim["file_list"])
    # halfway through, kim sees only her own vote
    w.vote("kim", rid, a, "request_changes", comment="kim on a")
    kim = w.call("GET", f"/requests/{rid}", "t-kim").json()
    assert [v["comment"] for v in kim["votes"]] == ["kim on a"]
    # chris has voted on every file: he may compare notes
    chris = w.call("GET", f"/requests/{rid}", "t-chris").json()
    assert chris["votes_visible"] is True and len(chris["votes"]) == 3
    # the requester and her colleague see nothing while the review runs
    for token in ("t-rita", "srv-rita", "t-nora"):
        seen = w.call("GET", f"/requests/{rid}", token).json()
        assert seen["votes"] == [] and seen["votes_visible"] is False
    # once decided, the requester sees the votes and outcomes
    w.vote("kim", rid, b, comment="kim on b")
    rita = w.call("GET", f"/requests/{rid}", "t-rita").json()
    assert rita["state"] == "changes_requested" and rita["votes_visible"] is True
    assert {v["comment"] for v in rita["votes"]} == {"chris on a", "chris on b", "kim on a",
                                                     "kim on b"}  # fmt: skip
    outcomes = {f["path"]: f["outcome"] for f in rita["file_list"]}
    assert outcomes == {"outputs/a.csv": "request_changes", "outputs/b.csv": "approve"}


# --- queue --------------------------------------------------------------------------------


def test_queue_filters_and_independence(w: World, tx: Tx) -> None:
    first = w.submitted()
    second = w.submitted(("outputs/other.csv", SAFE_CSV))
    w.approve_all(second, "kim")
    queue = w.call("GET", "/queue", "t-chris").json()
    assert [r["id"] for r in queue] == [first["id"], second["id"]]  # oldest first
    assert queue[1]["reviews_done"] == 1 and queue[1]["approvals_required"] == 2
    assert (
        w.call("GET", "/queue", "t-chris", params={"state": "in_review"}).json()[0]["id"]
        == (second["id"])
    )
    assert w.call("GET", "/queue", "t-chris", params={"project": "other"}).json() == []
    assert w.call("GET", "/queue", "t-chris", params={"min_age_hours": 5}).json() == []
    problem(w.call("GET", "/queue", "t-chris", params={"state": "draft"}), 400, "waiting")
    assert w.call("GET", "/queue", "t-pete").json() == []  # a member's queue skips his project
    assert w.call("GET", "/queue", "t-fred").json() == []  # and so does a former member's


# --- release and download -----------------------------------------------------------------


def test_full_happy_path_released_as_submitted(w: World, settings: Settings, tx: Tx) -> None:
    original = b"region,n\nnorth,120\nsouth,150\n"
    req = w.submitted(("outputs/table.csv", original), ("outputs/fig.png", PNG_1PX))
    rid = req["id"]
    # the researcher keeps working: the workspace file changes after submission
    w.write("outputs/table.csv", b"region,n\nnorth,1\nsouth,2\n")
    decided = w.approve_all(req, "chris", "kim")
    assert decided["state"] == "approved"
    rita = w.call("GET", f"/requests/{rid}", "t-rita").json()
    assert "release" in rita["allowed"]
    # not from a notebook server's token, not from a container address, not by someone else
    problem(w.call("POST", f"/requests/{rid}/release", "srv-rita"), 403, "notebook container")
    problem(w.call("POST", f"/requests/{rid}/release", "t-rita", inside=True), 403, "container")
    problem(w.call("POST", f"/requests/{rid}/release", "t-nora"), 403, "only the requester")
    released = w.call("POST", f"/requests/{rid}/release", "t-rita")
    assert released.status_code == 200, released.text
    assert released.json()["state"] == "released" and "download" in released.json()["allowed"]
    # download: only rita, only from outside
    for token, inside in (("t-nora", False), ("t-chris", False), ("srv-rita", False),
                          ("t-rita", True)):  # fmt: skip
        problem(w.call("GET", f"/requests/{rid}/download", token, inside=inside), 403)
    problem(w.call("GET", f"/requests/{rid}/download", "t-olga"), 404)
    got = w.call("GET", f"/requests/{rid}/download", "t-rita")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/zip"
    assert got.headers["content-disposition"] == (
        f'attachment; filename="trenv-release-reoffending-{rid}.zip"'
    )
    assert verify_bundle(got.content) == []
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        assert zf.read("files/outputs/table.csv") == original
        record = json.loads(zf.read("disclosure-record.json"))
    table = next(f for f in record["files"] if f["path"] == "outputs/table.csv")
    assert frozen_bytes(settings, table["sha256"]) == original
    assert {v["checker"] for v in record["votes"]} == {"chris", "kim"}
    with tx() as session:
        assert audit.verify(session).ok
        actions = [e.action for e in audit.events(session, action_prefix="airlock.")]
    assert actions[-3:] == ["airlock.request.release", "airlock.bundle", "airlock.download"]


def test_changes_requested_then_resubmitted_keeps_the_history(w: World) -> None:
    req = w.submitted(("outputs/a.csv", SAFE_CSV), ("outputs/b.csv", SAFE_CSV))
    rid = req["id"]
    a, b = (f["id"] for f in req["file_list"])
    w.vote("chris", rid, a, "request_changes", comment="merge north and south")
    w.vote("chris", rid, b, comment="ok")
    w.vote("kim", rid, a, comment="ok")
    back = w.vote("kim", rid, b, comment="ok").json()
    assert back["state"] == "changes_requested"
    assert w.call("GET", f"/requests/{rid}", "srv-rita").json()["allowed"] == [
        "edit", "resubmit", "withdraw"]  # fmt: skip
    # rita replaces a.csv from her workspace and resubmits
    w.write("outputs/a.csv", b"region,n\nall,270\n")
    body = {"path": "outputs/a.csv", "justification": "merged as asked"}
    edited = w.call("POST", f"/requests/{rid}/files", "srv-rita", json=body).json()
    assert edited["state"] == "changes_requested"
    resub = w.call("POST", f"/requests/{rid}/submit", "srv-rita",
                   json={"comment": "merged the regions"}).json()  # fmt: skip
    assert resub["state"] == "resubmitted" and resub["round"] == 2
    current = {f["path"]: f for f in resub["file_list"]}
    assert current["outputs/a.csv"]["justification"] == "merged as asked"
    assert current["outputs/a.csv"]["sha256"] != req["file_list"][0]["sha256"]
    assert current["outputs/b.csv"]["sha256"] == req["file_list"][1]["sha256"]  # carried over
    assert {f["round"] for f in resub["earlier_files"]} == {1}
    assert [(h["from_state"], h["to_state"]) for h in resub["history"]] == [
        ("draft", "submitted"), ("submitted", "in_review"), ("in_review", "changes_requested"),
        ("changes_requested", "resubmitted"),
    ]  # fmt: skip
    assert resub["history"][-1]["comment"] == "merged the regions"
    # round 1's votes stay readable while round 2 is blinded
    round_two = w.approve_all(resub, "chris")
    kim = w.call("GET", f"/requests/{rid}", "t-kim").json()
    assert {v["round"] for v in kim["votes"]} == {1}
    assert round_two["state"] == "in_review"
    assert w.approve_all(resub, "kim")["state"] == "approved"


def test_withdraw(w: World) -> None:
    req = w.submitted()
    problem(w.call("POST", f"/requests/{req['id']}/withdraw", "t-nora"), 403)
    out = w.call("POST", f"/requests/{req['id']}/withdraw", "srv-rita", json={"comment": "oops"})
    assert out.json()["state"] == "withdrawn" and out.json()["allowed"] == []
    assert out.json()["history"][-1]["comment"] == "oops"
    problem(w.call("POST", f"/requests/{req['id']}/withdraw", "srv-rita"), 409)


def test_a_container_sees_only_its_own_projects_requests(w: World, tx: Tx) -> None:
    with tx() as session:
        projects.add_member(session, actor=OPERATOR, slug="other", username="rita",
                            role=MemberRole.researcher)  # fmt: skip
    made = w.create("t-rita", project="other").json()
    assert w.call("GET", f"/requests/{made['id']}", "t-rita").status_code == 200
    # rita's server runs reoffending: the other project's request is not there for it
    problem(w.call("GET", f"/requests/{made['id']}", "srv-rita"), 404)
    problem(w.call("GET", f"/requests/{made['id']}", "t-rita", inside=True), 404)
    assert made["id"] not in [r["id"] for r in w.call("GET", "/requests", "srv-rita").json()]
    assert w.call("GET", "/requests", "srv-rita", params={"project": "other"}).json() == []


def test_unknown_and_unseen_requests_are_not_found(w: World) -> None:
    req = w.submitted()
    problem(w.call("GET", "/requests/9999", "t-rita"), 404)
    problem(w.call("GET", f"/requests/{req['id']}", "t-olga"), 404)
    assert w.call("GET", f"/requests/{req['id']}", "t-chris").status_code == 200


def test_forwarded_for_cannot_fake_being_outside(w: World) -> None:
    req = w.submitted()
    w.approve_all(req)
    forged = w.inside.post(
        f"{API}/requests/{req['id']}/release",
        headers={"Authorization": "token t-rita", "X-Forwarded-For": "203.0.113.10",
                 "X-Real-IP": "203.0.113.10"},
    )  # fmt: skip
    problem(forged, 403, "container")
    assert INSIDE[0].startswith("172.30.")


def test_a_deactivated_account_is_refused_even_with_a_valid_hub_token(w: World, tx: Tx) -> None:
    assert w.call("GET", "/requests", "t-rita").status_code == 200
    with tx() as session:
        users.set_active(session, actor=OPERATOR, username="rita", active=False)
    problem(w.call("GET", "/requests", "t-rita"), 403, "deactivated")
    problem(w.call("GET", "/requests", "srv-rita"), 403, "deactivated")
