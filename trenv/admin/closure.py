"""Closing a project: what `trenv project close` and the project page's Close action do.

In this order, each step recorded in the audit log and each safe to run again:

1. the project is marked closed (no server starts, nothing is published for it again), its
   published view is withdrawn and its pseudonym key destroyed (:func:`trenv.vault.service.
   close_project`), so running containers lose the data at once;
2. its running servers are stopped through the hub (best effort: a failure is recorded);
3. its workspaces are archived to the retention area and removed, but only once no server
   of the project runs any more, since a running container still writes to its workspace.

What remains is the audit trail and the released outputs (the airlock's store is untouched).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from trenv import audit
from trenv.admin.retention import Archive, archive_workspaces
from trenv.admin.servers import HubUnavailable, ServerControl, project_servers
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.vault import service as vault

OpenTransaction = Callable[[], AbstractContextManager[Session]]
STOP_WAIT = 60.0  # seconds to wait for stopping servers before the workspaces are archived


@dataclass
class ClosureOutcome:
    project: str
    already_closed: bool
    withdrawn: list[str]
    key_destroyed: bool
    servers: dict[str, str] = field(default_factory=dict)  # user -> what the hub said
    hub_problem: str | None = None  # the hub could not be asked or refused
    archive: Archive | None = None
    workspaces_kept: bool = False  # a server may still run: archive on the next run

    def summary(self) -> str:
        parts = [f"project {self.project} " + ("was already closed" if self.already_closed
                                                else "is closed")]  # fmt: skip
        parts.append(f"view withdrawn ({', '.join(self.withdrawn) or 'nothing'} was visible)")
        parts.append("pseudonym key destroyed")
        stopped = [u for u, s in self.servers.items() if s in ("stopped", "stopping")]
        parts.append(f"servers stopped: {', '.join(stopped) or 'none running'}")
        if self.archive is not None:
            parts.append(f"workspaces of {', '.join(self.archive.users)} archived to "
                         f"{self.archive.path} and removed")  # fmt: skip
        elif self.workspaces_kept:
            parts.append("workspaces kept: a server may still run (run the closure again)")
        else:
            parts.append("no workspaces to archive")
        return "; ".join(parts)


def close_project(
    open_tx: OpenTransaction,
    settings: Settings,
    slug: str,
    *,
    actor: str,
    servers: ServerControl,
    stop_wait: float = STOP_WAIT,
) -> ClosureOutcome:
    closed = vault.close_project(open_tx, settings, slug, actor=actor)
    outcome = ClosureOutcome(slug, closed.already_closed, closed.withdrawn, closed.key_destroyed)
    _stop_servers(outcome, servers, stop_wait)
    with open_tx() as session:
        audit.record(
            session,
            actor=actor,
            action=AuditAction.project_close_servers,
            object_type="project",
            object_id=slug,
            detail={"servers": outcome.servers, "hub_problem": outcome.hub_problem},
        )
    detail: dict[str, Any]
    if outcome.hub_problem is not None or any(s == "failed" for s in outcome.servers.values()):
        outcome.workspaces_kept = True
        detail = {"archive": None, "kept": "a server of the project may still be running"}
    else:
        outcome.archive = archive_workspaces(settings, slug)
        archive = outcome.archive
        detail = {"archive": None} if archive is None else {
            "archive": str(archive.path), "sha256": archive.sha256, "bytes": archive.size,
            "users": archive.users, "files": archive.files, "removed": True,
        }  # fmt: skip
    with open_tx() as session:
        audit.record(
            session,
            actor=actor,
            action=AuditAction.project_close_workspaces,
            object_type="project",
            object_id=slug,
            detail=detail,
        )
    return outcome


def _stop_servers(outcome: ClosureOutcome, servers: ServerControl, wait: float) -> None:
    try:
        targets = project_servers(servers.running(), outcome.project)
    except HubUnavailable as problem:
        outcome.hub_problem = problem.problem
        return
    for server in targets:
        try:
            outcome.servers[server.user] = servers.stop(server.user)
        except HubUnavailable as problem:
            outcome.servers[server.user] = "failed"
            outcome.hub_problem = problem.problem
    if not outcome.servers:
        return
    # A stop the hub answered with 202 is still under way: wait until it is gone.
    deadline = time.monotonic() + wait
    while True:
        try:
            left = {s.user for s in project_servers(servers.running(), outcome.project)}
        except HubUnavailable as problem:
            outcome.hub_problem = problem.problem
            return
        if not left:
            return
        if time.monotonic() > deadline:
            for user in left:
                outcome.servers[user] = "failed"
            outcome.hub_problem = f"still running after {wait:.0f} s: {', '.join(sorted(left))}"
            return
        time.sleep(0.5)
