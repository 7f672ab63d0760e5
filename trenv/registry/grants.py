"""Grants: which project may use which dataset version (and which columns), until when.

A grant may also carry column rules (:mod:`trenv.registry.grant_rules`): columns dropped from
the project's view and columns coarsened in it (dates to month or year, numbers to bands).

A grant is proposed by a steward and takes effect only when a data controller of the
supplying organisation, a different person, approves it. Revocation takes effect at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Conflict, Forbidden, Invalid, NotFound
from trenv.registry.datasets import codebook_columns, get_dataset
from trenv.registry.grant_rules import ColumnRules, check_rules, parse_rules
from trenv.registry.organisations import is_controller
from trenv.registry.permissions import may_approve_grant, may_propose_grant, may_revoke_grant
from trenv.registry.projects import get_project
from trenv.registry.users import get_user
from trenv.store.models import DatasetStatus, Grant, GrantStatus, ProjectStatus


def propose_grant(
    session: Session,
    *,
    proposer: str,
    project: str,
    dataset: str,
    columns: list[str] | None = None,
    expires_on: dt.date | None = None,
    today: dt.date | None = None,
    rules: ColumnRules | dict[str, Any] | None = None,
) -> Grant:
    today = today or dt.date.today()
    user = get_user(session, proposer)
    if not may_propose_grant(user.roles):
        raise Forbidden(
            f"{proposer!r} may not propose grants.", "Only stewards and admins propose grants."
        )
    proj = get_project(session, project)
    data = get_dataset(session, dataset)
    if proj.status == ProjectStatus.closed:
        raise Invalid(f"project {project!r} is closed.", "Grants cannot be added to it.")
    if data.status != DatasetStatus.available:
        raise Invalid(f"dataset {data.reference} is retired.", "Grant a current version.")
    if expires_on is not None and expires_on < today:
        raise Invalid(f"expiry date {expires_on} is in the past.", "Give a future date.")
    if columns is not None:
        columns = _check_columns(columns, codebook_columns(data.codebook), data.reference)
    column_rules = _check_rules(parse_rules(rules), data.codebook, columns, data.reference)
    open_grant = session.scalar(
        select(Grant).where(
            Grant.project_id == proj.id,
            Grant.dataset_id == data.id,
            Grant.status != GrantStatus.revoked,
        )
    )
    if open_grant is not None:
        raise Conflict(
            f"project {project!r} already has grant #{open_grant.id} "
            f"({open_grant.status.value}) on {data.reference}.",
            "Revoke it first to change its terms.",
        )
    grant = Grant(
        project=proj,
        dataset=data,
        columns=columns,
        column_rules=column_rules,
        expires_on=expires_on,
        proposed_by=proposer,
        status=GrantStatus.proposed,
    )
    session.add(grant)
    session.flush()
    audit.record(
        session,
        actor=proposer,
        action=AuditAction.grant_propose,
        object_type="grant",
        object_id=grant.id,
        detail={
            "project": project,
            "dataset": data.reference,
            "columns": columns,
            "column_rules": column_rules,
            "expires_on": expires_on.isoformat() if expires_on else None,
        },
    )
    return grant


def _check_rules(
    rules: ColumnRules, codebook: dict[str, Any], columns: list[str] | None, reference: str
) -> dict[str, Any] | None:
    if rules.empty:
        return None
    book = codebook.get("columns")
    known = book if isinstance(book, dict) else codebook_columns(codebook)
    if known is None:
        raise Invalid(
            f"dataset {reference} has no codebook listing its columns.",
            "Register it with a codebook before granting with column rules.",
        )
    return check_rules(rules, known, columns, reference).as_json()


def _check_columns(columns: list[str], known: list[str] | None, reference: str) -> list[str]:
    if not columns:
        raise Invalid("an empty column list grants nothing.", "Omit --columns to grant all.")
    if known is None:
        raise Invalid(
            f"dataset {reference} has no codebook listing its columns.",
            "Register it with a codebook before granting a column subset.",
        )
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise Invalid(
            f"dataset {reference} has no column(s) {', '.join(unknown)}.",
            f"Its columns are: {', '.join(known)}.",
        )
    return sorted(set(columns), key=known.index)


def get_grant(session: Session, grant_id: int) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(f"unknown grant #{grant_id}.", "See `trenv grant list`.")
    return grant


def approve_grant(session: Session, *, approver: str, grant_id: int) -> Grant:
    grant = get_grant(session, grant_id)
    user = get_user(session, approver)
    controls = is_controller(session, grant.dataset.supplier_id, user.id)
    if not may_approve_grant(
        approver=approver,
        proposer=grant.proposed_by,
        approver_controls_supplier=controls,
        status=grant.status,
    ):
        if grant.status != GrantStatus.proposed:
            raise Invalid(f"grant #{grant_id} is {grant.status.value}, not proposed.")
        if approver == grant.proposed_by:
            raise Forbidden(
                f"{approver!r} proposed grant #{grant_id} and cannot also approve it.",
                "A data controller of the supplier, another person, must approve.",
            )
        raise Forbidden(
            f"{approver!r} is not a data controller of {grant.dataset.supplier.slug!r}.",
            "Only the supplier's data controller can approve access to its data.",
        )
    grant.status, grant.approved_by = GrantStatus.active, approver
    grant.approved_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        actor=approver,
        action=AuditAction.grant_approve,
        object_type="grant",
        object_id=grant.id,
        detail={"project": grant.project.slug, "dataset": grant.dataset.reference},
    )
    return grant


def revoke_grant(session: Session, *, actor: str, grant_id: int, reason: str = "") -> Grant:
    grant = get_grant(session, grant_id)
    user = get_user(session, actor)
    controls = is_controller(session, grant.dataset.supplier_id, user.id)
    if not may_revoke_grant(roles=user.roles, controls_supplier=controls, status=grant.status):
        if grant.status == GrantStatus.revoked:
            raise Invalid(f"grant #{grant_id} is already revoked.")
        raise Forbidden(
            f"{actor!r} may not revoke grant #{grant_id}.",
            "Stewards, admins and the supplier's data controller can revoke.",
        )
    grant.status, grant.revoked_by = GrantStatus.revoked, actor
    grant.revoked_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.grant_revoke,
        object_type="grant",
        object_id=grant.id,
        detail={
            "project": grant.project.slug,
            "dataset": grant.dataset.reference,
            "reason": reason,
        },
    )
    return grant


def list_grants(session: Session, *, project: str | None = None) -> list[Grant]:
    query = select(Grant).order_by(Grant.id)
    if project is not None:
        query = query.where(Grant.project_id == get_project(session, project).id)
    return list(session.scalars(query))


def effective_grants(session: Session, project: str, today: dt.date | None = None) -> list[Grant]:
    """What the project may see today: approved, unexpired, unrevoked grants only."""
    return [g for g in list_grants(session, project=project) if g.is_effective(today)]
