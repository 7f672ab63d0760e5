"""Deactivating and reactivating a person: the account and, when deactivated, their server.

A deactivated user can no longer log in or start a server (the registry refuses both); a
server already running would keep its data mount, so it is stopped through the hub. The stop
is best effort and recorded either way, so an administrator sees whether it happened.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from trenv import audit
from trenv.admin.servers import HubUnavailable, ServerControl
from trenv.audit_actions import AuditAction
from trenv.registry import users


def set_active(
    session: Session, *, actor: str, username: str, active: bool, servers: ServerControl
) -> str:
    """Change the account; returns what happened to the user's server ('' when activating)."""
    user = users.get_user(session, username)
    if user.active != active:
        users.set_active(session, actor=actor, username=username, active=active)
    if active:
        return ""
    try:
        running = any(s.user == username for s in servers.running())
        outcome = servers.stop(username) if running else "not running"
    except HubUnavailable as problem:
        outcome = f"failed: {problem.problem}"
    audit.record(
        session,
        actor=actor,
        action=AuditAction.server_stop_request,
        object_type="server",
        object_id=username,
        detail={"reason": "user deactivated", "outcome": outcome},
    )
    return outcome


def stop_server(session: Session, *, actor: str, username: str, servers: ServerControl) -> str:
    """An administrator stops one server (the usage page's button); raises if the hub fails."""
    users.get_user(session, username)
    outcome = servers.stop(username)
    audit.record(
        session,
        actor=actor,
        action=AuditAction.server_stop_request,
        object_type="server",
        object_id=username,
        detail={"reason": "stopped by an administrator", "outcome": outcome},
    )
    return outcome
