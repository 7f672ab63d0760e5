"""People and their global roles (admin, steward, checker)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Conflict, Invalid, NotFound
from trenv.registry.validation import check_username
from trenv.store.models import GlobalRole, User, UserRole


def parse_roles(names: Iterable[str]) -> set[GlobalRole]:
    roles: set[GlobalRole] = set()
    for name in names:
        try:
            roles.add(GlobalRole(name))
        except ValueError:
            known = ", ".join(r.value for r in GlobalRole)
            raise Invalid(f"unknown role {name!r}.", f"Choose from: {known}.") from None
    return roles


def add_user(
    session: Session,
    *,
    actor: str,
    username: str,
    full_name: str = "",
    email: str = "",
    roles: Iterable[GlobalRole] = (),
) -> User:
    check_username(username)
    if session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"user {username!r} already exists.", "Pick another user name.")
    user = User(username=username, full_name=full_name, email=email)
    user.role_rows = [UserRole(role=role) for role in sorted(set(roles))]
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.user_add,
        object_type="user",
        object_id=username,
        detail={"roles": sorted(r.value for r in user.roles), "full_name": full_name},
    )
    return user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"unknown user {username!r}.", "See `trenv user list`.")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def set_roles(session: Session, *, actor: str, username: str, roles: set[GlobalRole]) -> User:
    user = get_user(session, username)
    before = sorted(r.value for r in user.roles)
    user.role_rows = [UserRole(role=role) for role in sorted(roles)]
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.user_roles,
        object_type="user",
        object_id=username,
        detail={"before": before, "after": sorted(r.value for r in roles)},
    )
    return user


def set_active(session: Session, *, actor: str, username: str, active: bool) -> User:
    user = get_user(session, username)
    user.active = active
    audit.record(
        session,
        actor=actor,
        action=AuditAction.user_activate if active else "user.deactivate",
        object_type="user",
        object_id=username,
    )
    return user
