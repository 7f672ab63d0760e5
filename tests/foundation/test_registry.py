"""The registry's rules, through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.support.world import OPERATOR, populate
from trenv.errors import Conflict, Forbidden, Invalid, NotFound
from trenv.registry import datasets, grants, images, projects, users
from trenv.store.models import AuditEvent, GlobalRole, GrantStatus, MemberRole

Tx = Callable[[], AbstractContextManager[Session]]


@pytest.fixture
def world(tx: Tx) -> Tx:
    with tx() as session:
        populate(session)
    return tx


def audit_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_every_change_is_audited(world: Tx) -> None:
    with world() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == [
        "user.add", "user.add", "user.add", "user.add", "user.add",
        "organisation.add", "organisation.controller.add",
        "project.create", "project.member.add", "dataset.register",
    ]  # fmt: skip


def test_refused_change_writes_nothing(world: Tx) -> None:
    with world() as session:
        before = audit_count(session)
    with pytest.raises(Conflict), world() as session:
        users.add_user(session, actor=OPERATOR, username="newbie")
        users.add_user(session, actor=OPERATOR, username="newbie")  # duplicate: whole tx fails
    with world() as session:
        assert audit_count(session) == before
        with pytest.raises(NotFound):
            users.get_user(session, "newbie")


def test_user_names_and_roles_are_validated(world: Tx) -> None:
    with world() as session:
        with pytest.raises(Invalid, match="not valid"):
            users.add_user(session, actor=OPERATOR, username="Robert'); DROP")
        with pytest.raises(Invalid, match="unknown role"):
            users.parse_roles(["root"])


def test_a_user_can_belong_to_several_projects(world: Tx) -> None:
    with world() as session:
        projects.create_project(
            session, actor=OPERATOR, slug="xtc-batches", title="XTC composition",
            end_date=dt.date.today() + dt.timedelta(days=30), policy_profile="sacro",
        )  # fmt: skip
        projects.add_member(
            session, actor=OPERATOR, slug="xtc-batches", username="rita", role=MemberRole.lead
        )
        slugs = [p.slug for p in projects.projects_for_user(session, "rita")]
    assert slugs == ["reoffending", "xtc-batches"]


def test_project_past_its_end_date_is_inactive(world: Tx) -> None:
    with world() as session:
        project = projects.get_project(session, "reoffending")
        assert project.is_active()
        after_end = project.end_date + dt.timedelta(days=1)
        assert not project.is_active(after_end)
        assert projects.projects_for_user(session, "rita", today=after_end) == []
        assert len(projects.projects_for_user(session, "rita", active_only=False)) == 1


def test_project_creation_rules(world: Tx) -> None:
    today = dt.date.today()
    with world() as session:
        with pytest.raises(Invalid, match="in the past"):
            projects.create_project(
                session, actor=OPERATOR, slug="late", title="t",
                end_date=today - dt.timedelta(days=1), policy_profile="sacro",
            )  # fmt: skip
        with pytest.raises(Invalid, match="before the start date"):
            projects.create_project(
                session, actor=OPERATOR, slug="backwards", title="t", end_date=today,
                start_date=today + dt.timedelta(days=3), policy_profile="sacro",
            )  # fmt: skip
        with pytest.raises(Conflict, match="already exists"):
            projects.create_project(
                session, actor=OPERATOR, slug="reoffending", title="t",
                end_date=today, policy_profile="sacro",
            )  # fmt: skip
        with pytest.raises(Conflict, match="already a member"):
            projects.add_member(
                session, actor=OPERATOR, slug="reoffending", username="rita",
                role=MemberRole.lead,
            )  # fmt: skip


def test_deactivated_user_cannot_be_added(world: Tx) -> None:
    with world() as session:
        users.set_active(session, actor=OPERATOR, username="chris", active=False)
        with pytest.raises(Invalid, match="deactivated"):
            projects.add_member(
                session, actor=OPERATOR, slug="reoffending", username="chris",
                role=MemberRole.researcher,
            )  # fmt: skip


def test_grant_needs_the_controllers_approval_before_it_counts(world: Tx) -> None:
    with world() as session:
        grant = grants.propose_grant(
            session, proposer="stella", project="reoffending", dataset="convictions"
        )
        assert grants.effective_grants(session, "reoffending") == []
        grants.approve_grant(session, approver="carl", grant_id=grant.id)
        effective = grants.effective_grants(session, "reoffending")
    assert [g.dataset.reference for g in effective] == ["convictions@2026-10"]


def test_proposer_cannot_approve_even_as_controller(world: Tx) -> None:
    with world() as session:
        users.set_roles(session, actor=OPERATOR, username="carl", roles={GlobalRole.steward})
        grant = grants.propose_grant(
            session, proposer="carl", project="reoffending", dataset="convictions"
        )
        with pytest.raises(Forbidden, match="cannot also approve"):
            grants.approve_grant(session, approver="carl", grant_id=grant.id)
        assert grant.status == GrantStatus.proposed


def test_only_the_suppliers_controller_approves(world: Tx) -> None:
    with world() as session:
        grant = grants.propose_grant(
            session, proposer="stella", project="reoffending", dataset="convictions"
        )
        for outsider in ("adam", "rita", "chris"):
            with pytest.raises(Forbidden, match="not a data controller"):
                grants.approve_grant(session, approver=outsider, grant_id=grant.id)


def test_researchers_and_checkers_cannot_propose(world: Tx) -> None:
    with world() as session:
        for person in ("rita", "chris", "carl"):
            with pytest.raises(Forbidden, match="may not propose"):
                grants.propose_grant(
                    session, proposer=person, project="reoffending", dataset="convictions"
                )


def test_column_subset_is_checked_against_the_codebook(world: Tx) -> None:
    with world() as session:
        with pytest.raises(Invalid, match="no column"):
            grants.propose_grant(
                session, proposer="stella", project="reoffending", dataset="convictions",
                columns=["person", "bsn"],
            )  # fmt: skip
        grant = grants.propose_grant(
            session, proposer="stella", project="reoffending", dataset="convictions@2026-10",
            columns=["offence", "person"],
        )  # fmt: skip
    assert grant.columns == ["person", "offence"]


def test_revocation_and_expiry_end_access(world: Tx) -> None:
    today = dt.date.today()
    with world() as session:
        grant = grants.propose_grant(
            session, proposer="stella", project="reoffending", dataset="convictions",
            expires_on=today + dt.timedelta(days=10),
        )  # fmt: skip
        grants.approve_grant(session, approver="carl", grant_id=grant.id)
        assert not grant.is_effective(today + dt.timedelta(days=11))
        with pytest.raises(Forbidden):
            grants.revoke_grant(session, actor="rita", grant_id=grant.id)
        grants.revoke_grant(session, actor="carl", grant_id=grant.id, reason="DPIA withdrawn")
        assert grants.effective_grants(session, "reoffending") == []
        with pytest.raises(Invalid, match="already revoked"):
            grants.revoke_grant(session, actor="stella", grant_id=grant.id)
        # A new proposal is possible once the old grant is revoked.
        grants.propose_grant(
            session, proposer="stella", project="reoffending", dataset="convictions"
        )


def test_duplicate_open_grant_is_refused(world: Tx) -> None:
    with world() as session:
        grants.propose_grant(
            session, proposer="stella", project="reoffending", dataset="convictions"
        )
        with pytest.raises(Conflict, match="already has grant"):
            grants.propose_grant(
                session, proposer="stella", project="reoffending", dataset="convictions"
            )


def test_dataset_versions_are_immutable(world: Tx) -> None:
    with world() as session:
        with pytest.raises(Conflict, match="immutable"):
            datasets.register_dataset(
                session, actor=OPERATOR, supplier="om", name="convictions", version="2026-10",
                classification=datasets.parse_classification("confidential"),
                row_count=1, sha256="b" * 64,
            )  # fmt: skip
        with pytest.raises(NotFound, match="unknown organisation"):
            datasets.register_dataset(
                session, actor=OPERATOR, supplier="nfi", name="seizures", version="1",
                classification=datasets.parse_classification("confidential"),
                row_count=1, sha256="b" * 64,
            )  # fmt: skip


def test_projects_run_only_on_approved_images(world: Tx) -> None:
    with world() as session:
        images.record_image(
            session, actor=OPERATOR, name="trenv/notebook", tag="1", digest="sha256:" + "1" * 64
        )
        with pytest.raises(Invalid, match="not approved"):
            projects.set_image(
                session, actor=OPERATOR, slug="reoffending", image_ref="trenv/notebook:1"
            )
        with pytest.raises(Forbidden, match="Only admins"):
            images.approve_image(session, approver="stella", reference="trenv/notebook:1")
        images.approve_image(session, approver="adam", reference="trenv/notebook:1")
        project = projects.set_image(
            session, actor=OPERATOR, slug="reoffending", image_ref="trenv/notebook:1"
        )
        assert project.image is not None and project.image.approved


def test_rebuilt_image_loses_its_approval(world: Tx) -> None:
    with world() as session:
        images.record_image(
            session, actor=OPERATOR, name="trenv/notebook", tag="1", digest="sha256:" + "1" * 64
        )
        images.approve_image(session, approver="adam", reference="trenv/notebook:1")
        image = images.record_image(
            session, actor=OPERATOR, name="trenv/notebook", tag="1", digest="sha256:" + "2" * 64
        )
        assert not image.approved and image.approved_by is None
