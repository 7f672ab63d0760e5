"""Reading the audit log for people: filters, a project's trail, and a readable detail."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.store.models import AuditEvent, Grant, Project

MAX_ROWS = 500


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""  # a prefix: "grant." or "grant.approve"
    actor: str = ""
    object: str = ""  # "type", "type:id" or an id
    limit: int = 200


def _object_clause(query: Select[tuple[AuditEvent]], text: str) -> Select[tuple[AuditEvent]]:
    kind, sep, ident = text.partition(":")
    if sep:
        return query.where(AuditEvent.object_type == kind, AuditEvent.object_id == ident)
    return query.where(or_(AuditEvent.object_type == text, AuditEvent.object_id == text))


def search(session: Session, wanted: AuditFilter) -> list[AuditEvent]:
    """The newest events matching every given filter, newest first."""
    query = select(AuditEvent)
    if wanted.action:
        query = query.where(AuditEvent.action.startswith(wanted.action, autoescape=True))
    if wanted.actor:
        query = query.where(AuditEvent.actor == wanted.actor)
    if wanted.object:
        query = _object_clause(query, wanted.object)
    limit = max(1, min(wanted.limit, MAX_ROWS))
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def project_trail(session: Session, project: Project, limit: int = MAX_ROWS) -> list[AuditEvent]:
    """Everything about a project: its own events, its grants' and its servers' and requests'
    (events naming it in their detail), newest first."""
    needle = audit.canonical_json({"project": project.slug})[1:-1]
    grant_ids = [
        str(g) for g in session.scalars(select(Grant.id).where(Grant.project_id == project.id))
    ]
    query = select(AuditEvent).where(
        or_(
            (AuditEvent.object_type == "project") & (AuditEvent.object_id == project.slug),
            (AuditEvent.object_type == "grant") & AuditEvent.object_id.in_(grant_ids),
            AuditEvent.detail.contains(needle, autoescape=True),
        )
    )
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit)))


def detail_text(event: AuditEvent, width: int = 240) -> str:
    """The detail as ``key=value`` pairs, shortened for a table cell."""
    try:
        detail = json.loads(event.detail)
    except ValueError:
        return event.detail[:width]
    if not isinstance(detail, dict):
        return str(detail)[:width]
    text = ", ".join(f"{k}={audit.canonical_json(v) if not isinstance(v, str) else v}"
                     for k, v in detail.items())  # fmt: skip
    return text if len(text) <= width else text[: width - 1] + "…"
