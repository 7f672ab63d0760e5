"""Research projects, their members and the image they run on."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Conflict, Invalid, NotFound
from trenv.registry.images import get_image
from trenv.registry.users import get_user
from trenv.registry.validation import check_slug
from trenv.store.models import (
    AuditEvent,
    MemberRole,
    Membership,
    Project,
    ProjectStatus,
    User,
)


def create_project(
    session: Session,
    *,
    actor: str,
    slug: str,
    title: str,
    end_date: dt.date,
    start_date: dt.date | None = None,
    purpose: str = "",
    legal_basis: str = "",
    policy_profile: str,
    today: dt.date | None = None,
) -> Project:
    check_slug(slug, "project")
    today = today or dt.date.today()
    start_date = start_date or today
    if not title.strip():
        raise Invalid("a project needs a title.", "Pass --title 'What the project studies'.")
    if end_date < today:
        raise Invalid(f"end date {end_date} is in the past.", "Give an end date of today or later.")
    if end_date < start_date:
        raise Invalid(f"end date {end_date} is before the start date {start_date}.")
    check_policy_profile(policy_profile)
    if session.scalar(select(Project).where(Project.slug == slug)):
        raise Conflict(f"project {slug!r} already exists.", "Pick another slug.")
    project = Project(
        slug=slug,
        title=title.strip(),
        purpose=purpose,
        legal_basis=legal_basis,
        start_date=start_date,
        end_date=end_date,
        policy_profile=policy_profile,
        status=ProjectStatus.active,
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.project_create,
        object_type="project",
        object_id=slug,
        detail={
            "title": project.title,
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "policy_profile": policy_profile,
            "legal_basis": legal_basis,
        },
    )
    return project


def check_policy_profile(name: str) -> str:
    """A project's outputs are checked under one of the shipped disclosure profiles."""
    from trenv.disclosure.policy import available_policies

    known = available_policies()
    if name not in known:
        raise Invalid(
            f"unknown disclosure policy profile {name!r}.", f"Choose from: {', '.join(known)}."
        )
    return name


def get_project(session: Session, slug: str) -> Project:
    project = session.scalar(select(Project).where(Project.slug == slug))
    if project is None:
        raise NotFound(f"unknown project {slug!r}.", "See `trenv project list`.")
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.slug)))


def add_member(
    session: Session, *, actor: str, slug: str, username: str, role: MemberRole
) -> Membership:
    project = get_project(session, slug)
    user = get_user(session, username)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project {slug!r} is closed.", "Members cannot be added to it.")
    if not user.active:
        raise Invalid(f"user {username!r} is deactivated.", "Reactivate the user first.")
    if find_membership(session, project, user) is not None:
        raise Conflict(f"{username!r} is already a member of {slug!r}.")
    membership = Membership(project=project, user=user, role=role)
    session.add(membership)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.project_member_add,
        object_type="project",
        object_id=slug,
        detail={"user": username, "role": role.value},
    )
    return membership


def remove_member(session: Session, *, actor: str, slug: str, username: str) -> None:
    project = get_project(session, slug)
    membership = find_membership(session, project, get_user(session, username))
    if membership is None:
        raise NotFound(f"{username!r} is not a member of {slug!r}.")
    session.delete(membership)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.project_member_remove,
        object_type="project",
        object_id=slug,
        detail={"user": username},
    )


def find_membership(session: Session, project: Project, user: User) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
    )


def projects_for_user(
    session: Session, username: str, *, active_only: bool = True, today: dt.date | None = None
) -> list[Project]:
    """The projects a user belongs to (by default only those open for work today)."""
    user = get_user(session, username)
    projects = session.scalars(
        select(Project).join(Membership).where(Membership.user_id == user.id).order_by(Project.slug)
    )
    return [p for p in projects if not active_only or p.is_active(today)]


def set_image(session: Session, *, actor: str, slug: str, image_ref: str) -> Project:
    project = get_project(session, slug)
    image = get_image(session, image_ref)
    if not image.approved or image.retired:
        state = "retired" if image.retired else "not approved"
        raise Invalid(
            f"image {image_ref!r} is {state}.",
            "Projects run only on approved images: see `trenv image approve`.",
        )
    project.image = image
    audit.record(
        session,
        actor=actor,
        action=AuditAction.project_image,
        object_type="project",
        object_id=slug,
        detail={"image": image.reference, "digest": image.digest},
    )
    return project


def has_been_member(session: Session, project: Project, username: str) -> bool:
    """A member now, or at any time before (from the audit log: removal deletes the row).

    The airlock uses this for independence: a former colleague may not review the project's
    outputs either."""
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and find_membership(session, project, user) is not None:
        return True
    details = session.scalars(
        select(AuditEvent.detail).where(
            AuditEvent.action == "project.member.add",
            AuditEvent.object_type == "project",
            AuditEvent.object_id == project.slug,
        )
    )
    return any(json.loads(detail).get("user") == username for detail in details)


def update_project(
    session: Session,
    *,
    actor: str,
    slug: str,
    title: str | None = None,
    purpose: str | None = None,
    legal_basis: str | None = None,
    end_date: dt.date | None = None,
    policy_profile: str | None = None,
    today: dt.date | None = None,
) -> Project:
    """Change a project's description, end date or disclosure profile (None: unchanged).

    The audit event records each changed field before and after, so the history of a
    project's terms (an extended end date, a stricter profile) can be read back."""
    project = get_project(session, slug)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project {slug!r} is closed.", "A closed project cannot be changed.")
    wanted: dict[str, object] = {}
    if title is not None:
        if not title.strip():
            raise Invalid("a project needs a title.", "Give it a title.")
        wanted["title"] = title.strip()
    if purpose is not None:
        wanted["purpose"] = purpose
    if legal_basis is not None:
        wanted["legal_basis"] = legal_basis
    if end_date is not None:
        today = today or dt.date.today()
        if end_date < project.start_date:
            raise Invalid(f"end date {end_date} is before the start date {project.start_date}.")
        if end_date < today and end_date != project.end_date:
            raise Invalid(
                f"end date {end_date} is in the past.",
                "To stop work now, close the project instead.",
            )
        wanted["end_date"] = end_date
    if policy_profile is not None:
        wanted["policy_profile"] = check_policy_profile(policy_profile)
    changes = {
        name: {"before": _plain(getattr(project, name)), "after": _plain(value)}
        for name, value in wanted.items()
        if getattr(project, name) != value
    }
    if not changes:
        return project
    for name in changes:
        setattr(project, name, wanted[name])
    audit.record(
        session,
        actor=actor,
        action=AuditAction.project_update,
        object_type="project",
        object_id=slug,
        detail=changes,
    )
    return project


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value
