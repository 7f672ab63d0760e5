"""Decide what a notebook server may be: the checks before a spawn, and the mounts it gets.

Kept apart from the spawner class so the rules are plain functions over the registry,
tested without a hub: a non-member, an inactive project or an unapproved image is refused
here, before any container exists.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from trenv.config import Settings
from trenv.errors import Forbidden, Invalid
from trenv.hub.account import ContainerAccount
from trenv.layout import project_data_dir, unpublished_dir, workspace_dir
from trenv.registry.grants import effective_grants
from trenv.registry.projects import find_membership, get_project
from trenv.registry.users import get_user
from trenv.store.models import Project
from trenv.vault.manifest import Manifest, read_manifest_at

DATA_MOUNT = "/data"
WORKSPACE_MOUNT = "/home/jovyan/work"


@dataclass(frozen=True)
class LaunchPlan:
    username: str
    project: str
    image_reference: str
    image_digest: str
    data_dir: Path
    workspace_dir: Path
    datasets: list[str] = field(default_factory=list)  # name@version mounted, from the manifest
    # Published but no longer granted (revoked or expired since the last publication): the
    # whole view is withheld until the vault publishes again.
    withheld: list[str] = field(default_factory=list)
    policy: str = "trenv-default"  # the project's disclosure profile, for trenv.lab's checks


def plan_launch(
    session: Session, settings: Settings, *, username: str, project: str,
    today: dt.date | None = None,
) -> LaunchPlan:  # fmt: skip
    """Refuse with a clear reason, or say exactly what the container gets."""
    user = get_user(session, username)
    proj = get_project(session, project)
    if not user.active:
        raise Forbidden(f"account {username!r} is deactivated.")
    if find_membership(session, proj, user) is None:
        raise Forbidden(
            f"{username!r} is not a member of project {project!r}.",
            "Ask the project lead or an administrator to add you.",
        )
    if not proj.is_active(today):
        raise Forbidden(
            f"project {project!r} is not active ({_inactive_reason(proj, today)}).",
            "Servers can only be started for active projects.",
        )
    image = proj.image
    if image is None:
        raise Invalid(
            f"project {project!r} has no image.", "An administrator must set an approved image."
        )
    if not image.approved or image.retired:
        raise Forbidden(
            f"project {project!r} uses image {image.reference}, which is "
            f"{'retired' if image.retired else 'not approved'}.",
            "An administrator must approve it or move the project to an approved image.",
        )
    data = project_data_dir(settings, project)
    # A view trenv cannot describe (no readable manifest) is never mounted.
    manifest = read_manifest_at(data)
    withheld = [] if manifest is None else _ungranted(session, project, manifest, today)
    if manifest is None or withheld:
        data = unpublished_dir(settings, project)
    return LaunchPlan(
        username=username,
        project=project,
        image_reference=image.reference,
        image_digest=image.digest,
        data_dir=data,
        workspace_dir=workspace_dir(settings, project, username),
        datasets=[] if manifest is None or withheld else manifest.references(),
        policy=proj.policy_profile,
        withheld=withheld,
    )


def _ungranted(
    session: Session, project: str, manifest: Manifest, today: dt.date | None
) -> list[str]:
    """Datasets (or columns) in the published view that no effective grant covers now.

    A revocation takes effect in the registry at once but the view changes only when the
    vault publishes again; checking here means the next server never mounts revoked data."""
    grants = {g.dataset.reference: g for g in effective_grants(session, project, today)}
    ungranted = []
    for entry in manifest.datasets:
        reference = entry.reference
        grant = grants.get(reference)
        if grant is None:
            ungranted.append(reference)
            continue
        allowed = grant.columns
        shown = entry.columns
        extra_columns = allowed is not None and not set(shown) <= set(allowed)
        # Published under other column rules (drop, coarsen) than the grant now has, e.g.
        # revoked and granted again more strictly: withheld until the vault publishes again.
        other_rules = _rules(entry.column_rules) != _rules(grant.column_rules)
        if extra_columns or other_rules:
            ungranted.append(reference)
    return sorted(ungranted)


def _rules(rules: Any) -> str:
    """Column rules in one canonical form (no rules, None and {} alike)."""
    return json.dumps(rules or {}, sort_keys=True)


def _inactive_reason(project: Project, today: dt.date | None) -> str:
    today = today or dt.date.today()
    if project.status.value != "active":
        return project.status.value
    if today > project.end_date:
        return f"ended on {project.end_date}"
    return f"starts on {project.start_date}"


def prepare_directories(plan: LaunchPlan, account: ContainerAccount) -> None:
    """The data mount exists (empty until the vault publishes) and the workspace belongs to
    the containers' account."""
    if not plan.data_dir.exists():
        plan.data_dir.mkdir(parents=True)
    if plan.data_dir.name == "unpublished":
        plan.data_dir.chmod(0o555)
    plan.workspace_dir.mkdir(parents=True, exist_ok=True)
    os.chown(plan.workspace_dir, account.uid, account.gid)
    plan.workspace_dir.chmod(0o700)
