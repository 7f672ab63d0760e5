"""The export request body the Outputs panel may forward, checked with the wire model
(trenv.wire.airlock): the panel's messages, nothing riding along, and the same title limit
as the web API, which validates with the same module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.airlock_world import Tx, World, build_world
from trenv.config import Settings
from trenv.lab.server.endpoints import RequestBodyError, export_request_body
from trenv.wire.airlock import MAX_JUSTIFICATION, MAX_TITLE

FILE = {"path": "outputs/t.csv", "justification": "Table 1"}


def body(**fields: Any) -> dict[str, Any]:
    return {"title": "Table 1", "files": [FILE], **fields}


def test_the_forwarded_body_is_rebuilt_from_the_wire_model() -> None:
    raw = body(
        title="  Table 1 ",
        project="proj-b",  # the server's token decides the project
        files=[{"path": "outputs/t.csv", "justification": " why \n", "size": 1}],
        extra={"x": 1},
    )
    assert export_request_body(raw) == {
        "title": "Table 1",
        "files": [{"path": "outputs/t.csv", "justification": "why"}],
        "submit": True,
    }
    assert export_request_body(body(submit=False))["submit"] is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "send a JSON object with title and files"),
        (None, "send a JSON object with title and files"),
        (body(title="   "), f"give the request a title of 1 to {MAX_TITLE} characters"),
        (body(title=7), f"give the request a title of 1 to {MAX_TITLE} characters"),
        ({"files": [FILE]}, f"give the request a title of 1 to {MAX_TITLE} characters"),
        ({"title": "x"}, "choose at least one output file"),
        (body(files=[]), "choose at least one output file"),
        (body(files={"outputs/t.csv": "why"}), "choose at least one output file"),
        (body(files=["outputs/t.csv"]), "each file needs a path and a justification"),
        (body(files=[{**FILE, "path": "/etc/passwd"}]), "'/etc/passwd' is not a path inside"),
        (body(files=[{**FILE, "path": "a/../../b"}]), "'a/../../b' is not a path inside"),
        (body(files=[{**FILE, "path": ""}]), "'' is not a path inside the workspace"),
        (body(files=[{"justification": "why"}]), "None is not a path inside the workspace"),
        (body(files=[{"path": "o.csv"}]), "justify o.csv: why is it needed"),
        (body(files=[{"path": "o.csv", "justification": "\t"}]), "justify o.csv: why is it"),
        (body(files=[FILE, {"path": "o.csv", "justification": "x" * (MAX_JUSTIFICATION + 1)}]),
         "justify o.csv: why is it needed and why is it safe?"),
        (body(submit="yes"), "submit is true or false"),
        (body(submit=1), "submit is true or false"),
    ],
)  # fmt: skip
def test_the_panels_messages(raw: Any, message: str) -> None:
    with pytest.raises(RequestBodyError) as refused:
        export_request_body(raw)
    assert str(refused.value).startswith(message), str(refused.value)


def test_the_first_problem_is_the_one_shown() -> None:
    raw = {"title": "", "files": [{"path": "/x"}], "submit": "no"}
    with pytest.raises(RequestBodyError, match="title"):
        export_request_body(raw)
    with pytest.raises(RequestBodyError, match="'/x' is not a path"):
        export_request_body({**raw, "title": "T"})


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def test_the_extension_and_the_web_api_share_the_title_limit(w: World) -> None:
    w.write("outputs/t.csv", b"region,n\nnorth,120\nsouth,150\n")
    longest, too_long = "x" * MAX_TITLE, "x" * (MAX_TITLE + 1)

    assert export_request_body(body(title=longest))["title"] == longest
    with pytest.raises(RequestBodyError, match=f"1 to {MAX_TITLE} characters"):
        export_request_body(body(title=too_long))

    accepted = w.create(title=longest, files=[FILE])
    assert accepted.status_code == 201, accepted.text
    refused = w.create(title=too_long, files=[FILE])
    assert refused.status_code == 400
    assert refused.json()["problem"] == f"title: String should have at most {MAX_TITLE} characters"
