"""A small, realistic registry for tests: a supplier, a steward, a controller, a researcher."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from trenv.registry import datasets, organisations, projects, users
from trenv.store.models import Classification, GlobalRole, MemberRole

OPERATOR = "operator:test"


def populate(session: Session) -> None:
    users.add_user(session, actor=OPERATOR, username="stella", roles={GlobalRole.steward})
    users.add_user(session, actor=OPERATOR, username="adam", roles={GlobalRole.admin})
    users.add_user(session, actor=OPERATOR, username="carl")  # the prosecution's controller
    users.add_user(session, actor=OPERATOR, username="rita")  # a researcher
    users.add_user(session, actor=OPERATOR, username="chris", roles={GlobalRole.checker})
    organisations.add_organisation(session, actor=OPERATOR, slug="om", name="Openbaar Ministerie")
    organisations.add_controller(session, actor=OPERATOR, slug="om", username="carl")
    projects.create_project(
        session,
        actor=OPERATOR,
        slug="reoffending",
        title="Two-year reoffending after conviction",
        end_date=dt.date.today() + dt.timedelta(days=365),
        policy_profile="trenv-default",
    )
    projects.add_member(
        session, actor=OPERATOR, slug="reoffending", username="rita", role=MemberRole.researcher
    )
    datasets.register_dataset(
        session,
        actor=OPERATOR,
        supplier="om",
        name="convictions",
        version="2026-10",
        classification=Classification.special_category,
        row_count=1000,
        sha256="a" * 64,
        codebook={"columns": {"person": {}, "offence": {}, "sentence_days": {}}},
    )
