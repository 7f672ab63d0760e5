"""Who opened which project's data when, and which servers run now.

Spawns come from the audit log (the spawner records ``server.spawn`` with the dataset
versions it mounted); running servers come from the hub. Both are joined here so the usage
page and the project page show the same facts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.admin.servers import RunningServer
from trenv.config import Settings
from trenv.store.models import AuditEvent
from trenv.vault.manifest import published_references

SPAWN = "server.spawn"


@dataclass(frozen=True)
class Spawn:
    event_id: int
    at: dt.datetime
    user: str
    project: str
    datasets: list[str]
    image: str
    digest: str


@dataclass(frozen=True)
class ServerRow:
    server: RunningServer
    spawn: Spawn | None  # the spawn that started it, when the log has it
    resources: dict[str, str] = field(default_factory=dict)

    @property
    def age_hours(self) -> float | None:
        age = self.server.age()
        return None if age is None else age.total_seconds() / 3600


def _spawn(row: AuditEvent) -> Spawn:
    detail: dict[str, Any] = json.loads(row.detail)
    return Spawn(
        event_id=row.id,
        at=dt.datetime.fromisoformat(row.occurred_at),
        user=row.actor,
        project=str(detail.get("project", "")),
        datasets=[str(d) for d in detail.get("datasets") or []],
        image=str(detail.get("image", "")),
        digest=str(detail.get("digest", "")),
    )


def spawns(
    session: Session, *, project: str | None = None, user: str | None = None, limit: int = 200
) -> list[Spawn]:
    """Newest first. Filtering by project uses the canonical JSON of the event's detail."""
    query = select(AuditEvent).where(AuditEvent.action == SPAWN)
    if user:
        query = query.where(AuditEvent.actor == user)
    if project:
        needle = audit.canonical_json({"project": project})[1:-1]
        query = query.where(AuditEvent.detail.contains(needle, autoescape=True))
    rows = session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit))
    found = [_spawn(r) for r in rows]
    return [s for s in found if project is None or s.project == project]


def resources(settings: Settings) -> dict[str, str]:
    """The limits every notebook container runs with (the spawner applies the same settings)."""
    return {
        "memory": settings.container_mem_limit,
        "cpus": f"{settings.container_cpu_limit:g}",
        "pids": str(settings.container_pids_limit),
        "tmp": settings.container_tmp_size,
    }


def server_rows(
    session: Session, settings: Settings, running: list[RunningServer]
) -> list[ServerRow]:
    """Running servers, oldest first, each with the spawn that started it."""
    limits = resources(settings)
    rows = []
    for server in running:
        recent = spawns(session, user=server.user, project=server.project or None, limit=1)
        rows.append(ServerRow(server, recent[0] if recent else None, limits))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(rows, key=lambda r: r.server.started or far)


def published(settings: Settings, slug: str) -> list[str]:
    """``name@version`` of what the project's view holds now (its manifest), if anything."""
    return published_references(settings, slug)
