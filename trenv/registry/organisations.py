"""Data suppliers of the justice chain and the data controllers who speak for them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Conflict, NotFound
from trenv.registry.users import get_user
from trenv.registry.validation import check_slug
from trenv.store.models import Organisation, OrganisationController


def add_organisation(session: Session, *, actor: str, slug: str, name: str) -> Organisation:
    check_slug(slug, "organisation")
    if session.scalar(select(Organisation).where(Organisation.slug == slug)):
        raise Conflict(f"organisation {slug!r} already exists.", "Pick another slug.")
    org = Organisation(slug=slug, name=name or slug)
    session.add(org)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.organisation_add,
        object_type="organisation",
        object_id=slug,
        detail={"name": org.name},
    )
    return org


def get_organisation(session: Session, slug: str) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        raise NotFound(f"unknown organisation {slug!r}.", "See `trenv org list`.")
    return org


def list_organisations(session: Session) -> list[Organisation]:
    return list(session.scalars(select(Organisation).order_by(Organisation.slug)))


def add_controller(session: Session, *, actor: str, slug: str, username: str) -> Organisation:
    org = get_organisation(session, slug)
    user = get_user(session, username)
    if is_controller(session, org.id, user.id):
        raise Conflict(f"{username!r} is already a data controller of {slug!r}.")
    session.add(OrganisationController(organisation_id=org.id, user_id=user.id))
    session.flush()
    session.refresh(org)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.organisation_controller_add,
        object_type="organisation",
        object_id=slug,
        detail={"user": username},
    )
    return org


def is_controller(session: Session, organisation_id: int, user_id: int) -> bool:
    row = session.get(OrganisationController, (organisation_id, user_id))
    return row is not None
