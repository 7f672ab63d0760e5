"""A registry with published data, for the administration tests (service layer and pages).

stella (steward) proposes, carl (controller of 'om') approves; rita and nora work on
'reoffending', which runs on an approved image and has 'sentences@1' published for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pyarrow as pa
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv.config import Settings
from trenv.hashing import file_sha256
from trenv.registry import datasets, grants, images, projects, users
from trenv.store.models import Classification, MemberRole
from trenv.vault import service as vault
from trenv.vault.ingest import write_parquet

Tx = Callable[[], AbstractContextManager[Session]]
DIGEST = "sha256:" + "c" * 64
IMAGE = "trenv/notebook:1"
CODEBOOK = {"columns": {"person": {"type": "pseudonym"}, "offence": {"type": "string"},
                        "sentence_days": {"type": "integer"}}}  # fmt: skip


def write_source(path: Path, rows: int = 200) -> Path:
    table = pa.table({
        "person": [f"p{i % 50:04d}" for i in range(rows)],
        "offence": [("theft", "fraud", "assault")[i % 3] for i in range(rows)],
        "sentence_days": [1 + i % 300 for i in range(rows)],
    })  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(table, path, {"pseudonym_columns": ["person"]})
    return path


def build(tx: Tx, settings: Settings, tmp: Path) -> int:
    """The world above; returns the id of the approved grant of sentences@1."""
    source = write_source(tmp / "vault-files" / "sentences.parquet")
    with tx() as session:
        populate(session)
        users.add_user(session, actor=OPERATOR, username="nora")
        projects.add_member(session, actor=OPERATOR, slug="reoffending", username="nora",
                            role=MemberRole.researcher)  # fmt: skip
        datasets.register_dataset(
            session, actor=OPERATOR, supplier="om", name="sentences", version="1",
            classification=Classification.special_category, row_count=200,
            sha256=file_sha256(source), path=str(source), codebook=CODEBOOK,
        )  # fmt: skip
        images.record_image(session, actor=OPERATOR, name="trenv/notebook", tag="1", digest=DIGEST)
        images.approve_image(session, approver="adam", reference=IMAGE)
        projects.set_image(session, actor=OPERATOR, slug="reoffending", image_ref=IMAGE)
        grant = grants.propose_grant(session, proposer="stella", project="reoffending",
                                     dataset="sentences@1")  # fmt: skip
        grants.approve_grant(session, approver="carl", grant_id=grant.id)
        grant_id = grant.id
    with tx() as session:
        vault.publish_project(session, settings, "reoffending", actor=OPERATOR)
    return grant_id


def end_date_in(days: int) -> dt.date:
    return dt.date.today() + dt.timedelta(days=days)
