"""Plain-dict views of registry objects for ``--json`` output and the web API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from trenv.store.models import AuditEvent, Dataset, Grant, Image, Organisation, Project, User


def user_dict(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email,
        "roles": sorted(r.value for r in user.roles),
        "active": user.active,
        "projects": sorted(m.project.slug for m in user.memberships),
    }


def organisation_dict(org: Organisation) -> dict[str, Any]:
    return {
        "slug": org.slug,
        "name": org.name,
        "controllers": [u.username for u in org.controllers],
    }


def project_dict(project: Project, today: dt.date | None = None) -> dict[str, Any]:
    return {
        "slug": project.slug,
        "title": project.title,
        "purpose": project.purpose,
        "legal_basis": project.legal_basis,
        "start_date": project.start_date.isoformat(),
        "end_date": project.end_date.isoformat(),
        "status": project.status.value,
        "active": project.is_active(today),
        "policy_profile": project.policy_profile,
        "image": project.image.reference if project.image else None,
        "members": [
            {"user": m.user.username, "role": m.role.value}
            for m in sorted(project.memberships, key=lambda m: m.user.username)
        ],
    }


def dataset_dict(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "version": dataset.version,
        "supplier": dataset.supplier.slug,
        "classification": dataset.classification.value,
        "description": dataset.description,
        "rows": dataset.row_count,
        "sha256": dataset.sha256,
        "status": dataset.status.value,
        "codebook": dataset.codebook,
    }


def grant_dict(grant: Grant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "project": grant.project.slug,
        "dataset": grant.dataset.reference,
        "columns": grant.columns,
        "column_rules": grant.column_rules,
        "status": grant.status.value,
        "effective": grant.is_effective(),
        "proposed_by": grant.proposed_by,
        "approved_by": grant.approved_by,
        "expires_on": grant.expires_on.isoformat() if grant.expires_on else None,
        "revoked_by": grant.revoked_by,
    }


def image_dict(image: Image) -> dict[str, Any]:
    return {
        "reference": image.reference,
        "digest": image.digest,
        "approved": image.approved,
        "approved_by": image.approved_by,
        "retired": image.retired,
        "labels": image.labels,
    }


def audit_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "action": event.action,
        "object": f"{event.object_type}:{event.object_id}",
        "detail": event.detail,
        "hash": event.hash,
    }
