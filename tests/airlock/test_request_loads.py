"""A transaction loads its export request once, however many files the request holds.

Each step of a command used to load the request and the caller's roles and memberships
again: adding N files and submitting in one call loaded the request 2N + 2 times, a submit
three times. Now the route loads a :class:`~trenv.airlock.queries.RequestContext` once and
passes it to the commands. Counted here as the SQL statements that select one export
request by its id (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.web.airlock_world import SAFE_CSV, Tx, World, build_world
from trenv.config import Settings
from trenv.store import get_engine

LOAD = re.compile(r"FROM export_requests\s+WHERE export_requests\.id = ")
SIZES = (1, 6)


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


@contextmanager
def request_loads(settings: Settings) -> Iterator[list[str]]:
    """The statements that load one export request, while the block runs."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if LOAD.search(statement):
            seen.append(statement)

    engine = get_engine(settings)
    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def files_body(w: World, n: int, prefix: str) -> list[dict[str, str]]:
    for i in range(n):
        w.write(f"outputs/{prefix}{i}.csv", SAFE_CSV)
    return [{"path": f"outputs/{prefix}{i}.csv", "justification": "why"} for i in range(n)]


def test_creating_and_submitting_does_not_load_the_request_per_file(w: World) -> None:
    loads = {}
    for n in SIZES:
        body = files_body(w, n, f"c{n}-")
        with request_loads(w.settings) as seen:
            reply = w.create(files=body, submit=True)
        assert reply.status_code == 201, reply.text
        assert reply.json()["state"] == "submitted" and len(reply.json()["file_list"]) == n
        loads[n] = len(seen)
    assert loads[SIZES[0]] == loads[SIZES[-1]] <= 1, loads


@pytest.mark.parametrize("n", SIZES)
def test_a_submit_loads_the_request_once(w: World, n: int) -> None:
    draft = w.create(files=files_body(w, n, "s"))
    assert draft.status_code == 201, draft.text
    with request_loads(w.settings) as seen:
        reply = w.call("POST", f"/requests/{draft.json()['id']}/submit", "srv-rita")
    assert reply.status_code == 200, reply.text
    assert reply.json()["state"] == "submitted"
    assert len(seen) == 1, seen


def test_adding_a_file_loads_the_request_once(w: World) -> None:
    draft = w.create(files=files_body(w, 3, "a"))
    w.write("outputs/extra.csv", SAFE_CSV)
    with request_loads(w.settings) as seen:
        reply = w.call("POST", f"/requests/{draft.json()['id']}/files", "srv-rita",
                       json={"path": "outputs/extra.csv", "justification": "why"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["file_list"]) == 4
    assert len(seen) == 1, seen
