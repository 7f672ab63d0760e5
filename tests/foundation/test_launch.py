"""The checks before a spawn, as plain functions over the registry (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv.config import Settings
from trenv.errors import Forbidden, Invalid
from trenv.hub.launch import plan_launch
from trenv.layout import project_data_dir, unpublished_dir
from trenv.registry import images, projects, users
from trenv.store.models import MemberRole

DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def world(session: Session) -> Session:
    populate(session)
    images.record_image(session, actor=OPERATOR, name="trenv/notebook", tag="1", digest=DIGEST)
    images.approve_image(session, approver="adam", reference="trenv/notebook:1")
    projects.set_image(session, actor=OPERATOR, slug="reoffending", image_ref="trenv/notebook:1")
    return session


def test_member_gets_the_pinned_image_and_mounts(world: Session, settings: Settings) -> None:
    plan = plan_launch(world, settings, username="rita", project="reoffending")
    assert plan.image_digest == DIGEST
    assert plan.workspace_dir.parts[-2:] == ("reoffending", "rita")
    assert plan.data_dir.name == "unpublished"  # nothing published yet
    assert plan.policy == "trenv-default"  # the lab checks under the project's profile


def test_non_member_is_refused(world: Session, settings: Settings) -> None:
    with pytest.raises(Forbidden, match="not a member"):
        plan_launch(world, settings, username="chris", project="reoffending")


def test_project_after_its_end_date_is_refused(world: Session, settings: Settings) -> None:
    end = projects.get_project(world, "reoffending").end_date
    with pytest.raises(Forbidden, match="ended on"):
        plan_launch(
            world, settings, username="rita", project="reoffending",
            today=end + dt.timedelta(days=1),
        )  # fmt: skip


def test_unapproved_image_is_refused(world: Session, settings: Settings) -> None:
    images.record_image(
        world, actor=OPERATOR, name="trenv/notebook", tag="1", digest="sha256:" + "d" * 64
    )  # a rebuild withdraws the approval
    with pytest.raises(Forbidden, match="not approved"):
        plan_launch(world, settings, username="rita", project="reoffending")


def test_project_without_image_is_refused(world: Session, settings: Settings) -> None:
    projects.create_project(
        world, actor=OPERATOR, slug="bare", title="t",
        end_date=dt.date.today() + dt.timedelta(days=9), policy_profile="sacro",
    )  # fmt: skip
    projects.add_member(
        world, actor=OPERATOR, slug="bare", username="rita", role=MemberRole.researcher
    )
    with pytest.raises(Invalid, match="has no image"):
        plan_launch(world, settings, username="rita", project="bare")


def test_deactivated_member_is_refused(world: Session, settings: Settings) -> None:
    users.set_active(world, actor=OPERATOR, username="rita", active=False)
    with pytest.raises(Forbidden, match="deactivated"):
        plan_launch(world, settings, username="rita", project="reoffending")


def test_a_view_without_a_readable_manifest_is_never_mounted(
    world: Session, settings: Settings
) -> None:
    # A data link whose manifest is missing or malformed is a view trenv cannot describe.
    data = project_data_dir(settings, "reoffending")
    data.mkdir(parents=True)
    (data / "convictions.parquet").write_bytes(b"PAR1")
    plan = plan_launch(world, settings, username="rita", project="reoffending")
    assert plan.data_dir == unpublished_dir(settings, "reoffending")
    assert plan.datasets == []
    (data / "manifest.json").write_text('{"project": "reoffending"}')  # no published_at
    plan = plan_launch(world, settings, username="rita", project="reoffending")
    assert plan.data_dir == unpublished_dir(settings, "reoffending")
