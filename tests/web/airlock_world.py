"""A world for the airlock's web tests: people, tokens, a workspace on disk, two clients.

- rita researches in 'reoffending' (server running); nora is her colleague there;
- chris, kim and cora are independent output checkers (hub scope custom:trenv:review);
- pete is a checker *and* a member of reoffending; fred is a checker who used to be one;
- vic is a checker in the registry whose hub token lacks the review scope;
- olga works on 'other'.

Tokens: ``srv-<name>`` is a notebook server's own token, ``t-<name>`` a browser login.
``outside`` connects from an ordinary address, ``inside`` from the containers' subnet.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv.config import Settings
from trenv.registry import projects, users
from trenv.store.models import GlobalRole, MemberRole
from trenv.web.app import create_app
from trenv.web.auth import StaticIdentity, WebUser
from trenv.web.deps import REVIEW
from trenv.web.network_origin import ENV

Tx = Callable[[], AbstractContextManager[Session]]
P = "/services/trenv/"
API = P + "api/airlock"
SUBNET = "172.30.0.0/16"
INSIDE = ("172.30.0.5", 40000)
OUTSIDE = ("203.0.113.10", 50000)
ACCESS = "access:services!service=trenv"
CHECKERS = ("chris", "kim", "cora", "pete", "fred")
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
SAFE_CSV = b"region,n\nnorth,120\nsouth,150\n"
SMALL_CSV = b"offence,count\ntheft,40\nfraud,2\n"


def server_user(name: str) -> WebUser:
    scopes = {f"users:activity!user={name}", f"access:servers!server={name}/", ACCESS}
    return WebUser(name, frozenset(scopes), from_server=True)


def browser_user(name: str, *extra: str) -> WebUser:
    return WebUser(name, frozenset({ACCESS, *extra}))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@dataclass
class World:
    settings: Settings
    tx: Tx
    identity: StaticIdentity
    outside: TestClient
    inside: TestClient

    def workspace(self, user: str = "rita", project: str = "reoffending") -> Path:
        assert self.settings.workspaces_dir is not None
        return self.settings.workspaces_dir / project / user

    def write(self, rel: str, data: bytes, user: str = "rita") -> Path:
        path = self.workspace(user) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def call(
        self, method: str, path: str, token: str, *, inside: bool = False, **kw: Any
    ) -> httpx.Response:
        client = self.inside if inside else self.outside
        return client.request(method, API + path, headers=auth(token), **kw)

    def create(self, token: str = "srv-rita", **body: Any) -> httpx.Response:
        body.setdefault("title", "Reoffending by region")
        return self.call("POST", "/requests", token, json=body)

    def submitted(self, *files: tuple[str, bytes]) -> dict[str, Any]:
        """A request of rita's with ``files`` (default: one safe table), submitted."""
        files = files or (("outputs/table.csv", SAFE_CSV),)
        for rel, data in files:
            self.write(rel, data)
        reply = self.create(
            files=[{"path": rel, "justification": "for the paper"} for rel, _ in files],
            submit=True,
        )
        assert reply.status_code == 201, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def vote(
        self, checker: str, request_id: int, file_id: int, decision: str = "approve", **kw: Any
    ) -> httpx.Response:
        body = {"file_id": file_id, "decision": decision, "comment": kw.pop("comment", "")}
        return self.call("POST", f"/requests/{request_id}/votes", f"t-{checker}", json=body, **kw)

    def approve_all(self, request: dict[str, Any], *checkers: str) -> dict[str, Any]:
        last: dict[str, Any] = request
        for checker in checkers or ("chris", "kim"):
            for f in request["file_list"]:
                reply = self.vote(checker, request["id"], f["id"], comment="fine")
                assert reply.status_code == 200, reply.text
                last = reply.json()
        return last


def build_world(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv(ENV, SUBNET)
    with tx() as session:
        populate(session)
        for name in ("kim", "cora", "pete", "fred", "vic"):
            users.add_user(session, actor=OPERATOR, username=name, roles={GlobalRole.checker})
        for name in ("nora", "olga"):
            users.add_user(session, actor=OPERATOR, username=name)
        projects.create_project(
            session, actor=OPERATOR, slug="other", title="Another study",
            end_date=dt.date.today() + dt.timedelta(days=90), policy_profile="trenv-default",
        )  # fmt: skip
        for slug, name in (("other", "olga"), ("reoffending", "nora"), ("reoffending", "pete"),
                           ("reoffending", "fred")):  # fmt: skip
            projects.add_member(session, actor=OPERATOR, slug=slug, username=name,
                                role=MemberRole.researcher)  # fmt: skip
        projects.remove_member(session, actor=OPERATOR, slug="reoffending", username="fred")
    tokens: dict[str, WebUser] = {}
    for name in ("rita", "nora", "olga", "adam"):
        tokens[f"srv-{name}"] = server_user(name)
        tokens[f"t-{name}"] = browser_user(name)
    for name in CHECKERS:
        tokens[f"t-{name}"] = browser_user(name, REVIEW)
    tokens["t-vic"] = browser_user("vic")  # a checker in the registry, no hub scope
    identity = StaticIdentity(
        users=tokens, servers={"rita": "reoffending", "nora": "reoffending", "olga": "other"}
    )
    app = create_app(settings, identity)
    with TestClient(app, client=OUTSIDE) as outside, TestClient(app, client=INSIDE) as inside:
        world = World(settings, tx, identity, outside, inside)
        world.workspace().mkdir(parents=True)
        yield world
