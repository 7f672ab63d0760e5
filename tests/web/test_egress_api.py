"""``POST /api/egress/report``: only a notebook server's own token may feed the meter; bad
counts are refused whole; the levels' audit events are written once; uploads per day."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.support.world import populate
from tests.web.conftest import API, server_user
from trenv.config import Settings
from trenv.disclosure.policy import load_policy
from trenv.meter import levels as lv
from trenv.meter.wire import MAX_COUNT_BYTES, MAX_COUNTS
from trenv.store.models import AuditEvent, EgressUsage
from trenv.web.app import create_app
from trenv.web.auth import StaticIdentity, WebUser

Tx = Callable[[], AbstractContextManager[Session]]
REPORT = f"{API}/egress/report"
TEXT = lv.levels(load_policy("trenv-default"), "text")
UPLOAD_CAP = lv.levels(load_policy("trenv-default"), "upload").hard


@pytest.fixture
def client(settings: Settings, tx: Tx) -> Iterator[TestClient]:
    """rita's server runs for 'reoffending'; u-rita is her personal (browser) token;
    nora has a server token but no running server."""
    with tx() as session:
        populate(session)
    identity = StaticIdentity(
        users={"t-rita": server_user("rita"), "u-rita": WebUser("rita", frozenset({"self"})),
               "t-nora": server_user("nora")},
        servers={"rita": "reoffending"},
    )  # fmt: skip
    with TestClient(create_app(settings, identity)) as test_client:
        yield test_client


def post(client: TestClient, body: Any, token: str = "t-rita") -> Any:
    return client.post(REPORT, json=body, headers={"Authorization": f"token {token}"})


def counted(tx: Tx) -> int:
    with tx() as session:
        return sum(session.scalars(select(EgressUsage.bytes)))


def egress_events(tx: Tx) -> list[tuple[str, str, dict[str, Any]]]:
    with tx() as session:
        found = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action.startswith("egress."))
            .order_by(AuditEvent.id)
        )
        return [(e.action, e.actor, json.loads(e.detail)) for e in found]


def text(nbytes: object, channel: str = "kernel") -> dict[str, object]:
    return {"channel": channel, "kind": "text", "bytes": nbytes}


def test_a_servers_report_is_counted_and_answered(client: TestClient, tx: Tx) -> None:
    reply = post(client, {"counts": [text(1000), text(24, "contents")]})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["project"] == "reoffending" and answer["upload"] is None
    assert set(answer["kinds"]) == {"text", "image", "upload"}
    assert answer["kinds"]["text"] | {"resets_at": None} == {
        "used": 1024, "warn": TEXT.warn, "hard": TEXT.hard, "state": "ok", "resets_at": None,
    }  # fmt: skip
    assert answer["kinds"]["text"]["resets_at"].endswith(":00:00Z")
    assert counted(tx) == 1024
    state = post(client, {})  # at start the server asks with an empty report
    assert state.status_code == 200 and state.json()["kinds"]["text"]["used"] == 1024


def test_a_personal_token_cannot_report(client: TestClient, tx: Tx) -> None:
    reply = post(client, {"counts": [text(10)]}, token="u-rita")
    assert reply.status_code == 403
    assert "notebook server's own token" in reply.json()["problem"]
    assert client.post(REPORT, json={}).status_code == 401
    no_server = post(client, {"counts": [text(10)]}, token="t-nora")
    assert no_server.status_code == 403 and "no running notebook server" in no_server.text
    assert counted(tx) == 0 and egress_events(tx) == []


@pytest.mark.parametrize(
    "body",
    [
        {"counts": [text(-1)]},
        {"counts": [text(1.5)]},
        {"counts": [text("12")]},
        {"counts": [text(True)]},
        {"counts": [text(None)]},
        {"counts": [text(MAX_COUNT_BYTES + 1)]},
        {"counts": [text(10**30)]},
        {"counts": [text(10, "email")]},
        {"counts": [{"channel": "kernel", "kind": "upload", "bytes": 10}]},  # uploads: checked
        {"counts": [{"channel": "kernel", "kind": "text"}]},
        {"counts": [text(1)] * (MAX_COUNTS + 1)},
        {"counts": [text(10)], "events": [{"action": "egress.warn", "detail": {}}]},
        {"counts": [text(10)], "events": [{"action": "egress.cut", "detail": ["x"]}]},
        {"counts": [text(10)], "project": "other"},  # the project is never the body's
        {"counts": {"channel": "kernel"}},
        {"upload": {"path": "x", "bytes": -3}},
    ],
)
def test_nonsense_is_refused_whole(client: TestClient, tx: Tx, body: dict[str, Any]) -> None:
    reply = post(client, body)
    assert reply.status_code == 400, reply.text
    assert set(reply.json()) == {"problem", "fix"}
    assert counted(tx) == 0 and egress_events(tx) == []


def test_levels_write_their_audit_event_once(client: TestClient, tx: Tx) -> None:
    assert post(client, {"counts": [text(TEXT.warn - 1)]}).json()["kinds"]["text"]["state"] == "ok"
    assert egress_events(tx) == []
    for _ in range(3):
        assert post(client, {"counts": [text(1)]}).json()["kinds"]["text"]["state"] == "warn"
    assert [a for a, _, _ in egress_events(tx)] == ["egress.warn"]
    for _ in range(2):
        reply = post(client, {"counts": [text(TEXT.hard)]})
        assert reply.json()["kinds"]["text"]["state"] == "stopped"
    events = egress_events(tx)
    assert [a for a, _, _ in events] == ["egress.warn", "egress.stopped"]
    _, actor, detail = events[1]
    assert actor == "rita" and detail["project"] == "reoffending" and detail["kind"] == "text"
    assert detail["level"] == TEXT.hard and detail["used"] >= TEXT.hard


def test_events_are_audited_with_the_servers_project(client: TestClient, tx: Tx) -> None:
    detail = {"rule": "blob", "project": "forged", "k" * 500: "v" * 5000}
    assert post(client, {"events": [{"action": "egress.cut", "detail": detail}]}).status_code == 200
    [(action, actor, recorded)] = egress_events(tx)
    assert (action, actor) == ("egress.cut", "rita")
    assert (recorded["project"], recorded["rule"]) == ("reoffending", "blob")
    detail = recorded
    assert max(len(k) for k in detail) <= 64 and max(len(str(v)) for v in detail.values()) <= 300


def test_uploads_are_capped_per_day(client: TestClient, tx: Tx) -> None:
    nine_mb = 9 * 1024 * 1024
    for number in range(1, 6):
        reply = post(client, {"upload": {"path": f"f{number}.bin", "bytes": nine_mb}})
        assert reply.json()["upload"]["allowed"], reply.text
    refused = post(client, {"upload": {"path": "f6.bin", "bytes": nine_mb}}).json()["upload"]
    assert refused == {"allowed": False, "bytes": nine_mb, "used": 5 * nine_mb,
                       "limit": UPLOAD_CAP, "resets_at": refused["resets_at"]}  # fmt: skip
    assert refused["resets_at"].endswith("T00:00:00Z")
    assert counted(tx) == 5 * nine_mb  # the refused upload was not counted
