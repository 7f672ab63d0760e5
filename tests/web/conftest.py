"""A migrated database with the test world, published data for one project, and the app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv.config import Settings
from trenv.privacy import ledger
from trenv.registry import grants, projects, users
from trenv.store.models import MemberRole
from trenv.vault.ingest import write_parquet
from trenv.vault.pseudonym import Pseudonymiser
from trenv.vault.publish import PublishItem, publish
from trenv.web.app import create_app
from trenv.web.auth import StaticIdentity, WebUser

Tx = Callable[[], AbstractContextManager[Session]]
API = "/services/trenv/api"
SERVER_SCOPES = frozenset({"users:activity!user={u}", "access:servers!server={u}/",
                           "access:services!service=trenv"})  # fmt: skip
OFFENCES = {"theft": "Theft", "assault": "Assault", "fraud": "Fraud"}
CODEBOOK = {
    "columns": {
        "person_pseudonym": {"type": "pseudonym", "role": "identifier"},
        "offence": {"type": "string", "role": "attribute", "codes": OFFENCES},
        "year": {"type": "integer", "role": "attribute", "generalised": "year"},
        "sentence_days": {"type": "integer", "role": "attribute", "range": [1, 3650]},
    }
}
ROWS = 3000


def server_user(name: str) -> WebUser:
    return WebUser(name, frozenset(s.format(u=name) for s in SERVER_SCOPES), from_server=True)


@dataclass
class Web:
    client: TestClient
    identity: StaticIdentity
    settings: Settings
    tx: Tx

    def post(self, token: str, **body: object) -> object:
        return self.client.post(f"{API}/dp/query", json=body,
                                headers={"Authorization": f"token {token}"})  # fmt: skip


def _write_source(path: Path) -> None:
    rng = np.random.default_rng(7)
    people = rng.integers(0, 1000, ROWS)
    table = pa.table({
        "person_pseudonym": [f"p{i:05d}" for i in people],
        "offence": rng.choice(["theft", "assault", "fraud", "other"], ROWS),
        "year": rng.integers(2020, 2024, ROWS),
        "sentence_days": rng.integers(1, 400, ROWS),
    })  # fmt: skip
    write_parquet(table, path, {"pseudonym_columns": ["person_pseudonym"]})


@pytest.fixture
def web(settings: Settings, tx: Tx, tmp_path: Path) -> Iterator[Web]:
    """rita works on reoffending (granted convictions, budget rho 1.0, server running);
    olga works on 'other' (no grant); nora is in reoffending but has no running server."""
    with tx() as session:
        populate(session)
        for name in ("olga", "nora"):
            users.add_user(session, actor=OPERATOR, username=name)
        projects.create_project(
            session, actor=OPERATOR, slug="other", title="Another study",
            end_date=dt.date.today() + dt.timedelta(days=90), policy_profile="trenv-default",
        )  # fmt: skip
        projects.add_member(session, actor=OPERATOR, slug="other", username="olga",
                            role=MemberRole.researcher)  # fmt: skip
        projects.add_member(session, actor=OPERATOR, slug="reoffending", username="nora",
                            role=MemberRole.researcher)  # fmt: skip
        grant = grants.propose_grant(session, proposer="stella", project="reoffending",
                                     dataset="convictions@2026-10")  # fmt: skip
        grants.approve_grant(session, approver="carl", grant_id=grant.id)
        for project in ("reoffending", "other"):
            ledger.set_budget(session, actor="adam", project=project, dataset="convictions",
                              rho_total=1.0)  # fmt: skip
    source = tmp_path / "convictions.parquet"
    _write_source(source)
    assert settings.projects_dir is not None
    for project in ("reoffending", "other"):  # 'other' has the file but not the grant
        publish(project, [PublishItem("convictions", "2026-10", source, codebook=CODEBOOK)],
                settings.projects_dir / project, Pseudonymiser(b"k" * 32))  # fmt: skip
    identity = StaticIdentity(
        users={"t-rita": server_user("rita"), "t-olga": server_user("olga"),
               "t-nora": server_user("nora")},
        servers={"rita": "reoffending", "olga": "other"},
    )  # fmt: skip
    client = TestClient(create_app(settings, identity))
    yield Web(client, identity, settings, tx)
    client.close()
