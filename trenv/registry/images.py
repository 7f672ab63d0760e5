"""Notebook images: recorded when built, usable by projects only once approved."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.errors import Conflict, Forbidden, Invalid, NotFound
from trenv.registry.permissions import may_approve_image
from trenv.registry.users import get_user
from trenv.store.models import Image, Project


def split_reference(reference: str) -> tuple[str, str]:
    name, sep, tag = reference.rpartition(":")
    if not sep or not name or "/" in tag:
        raise Invalid(f"image reference {reference!r} has no tag.", "Write it as NAME:TAG.")
    return name, tag


def record_image(
    session: Session,
    *,
    actor: str,
    name: str,
    tag: str,
    digest: str,
    labels: dict[str, str] | None = None,
) -> Image:
    """Record a freshly built image; a rebuild under the same tag replaces the record and
    withdraws its approval, because the bytes changed."""
    image = session.scalar(select(Image).where(Image.name == name, Image.tag == tag))
    if image is not None and image.digest == digest:
        return image
    if image is None:
        image = Image(name=name, tag=tag, digest=digest, labels=labels or {})
        session.add(image)
    else:
        image.digest, image.labels = digest, labels or {}
        image.approved, image.approved_by, image.approved_at = False, None, None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.image_record,
        object_type="image",
        object_id=image.reference,
        detail={"digest": digest, "labels": labels or {}},
    )
    return image


def get_image(session: Session, reference: str) -> Image:
    name, tag = split_reference(reference)
    image = session.scalar(select(Image).where(Image.name == name, Image.tag == tag))
    if image is None:
        raise NotFound(f"unknown image {reference!r}.", "See `trenv image list`.")
    return image


def list_images(session: Session) -> list[Image]:
    return list(session.scalars(select(Image).order_by(Image.name, Image.tag)))


def approve_image(session: Session, *, approver: str, reference: str) -> Image:
    image = get_image(session, reference)
    if not may_approve_image(get_user(session, approver).roles):
        raise Forbidden(f"{approver!r} may not approve images.", "Only admins approve images.")
    if image.retired:
        raise Invalid(f"image {reference!r} is retired.", "Build a new image instead.")
    if image.approved:
        raise Conflict(f"image {reference!r} is already approved.")
    image.approved, image.approved_by = True, approver
    image.approved_at = dt.datetime.now(dt.UTC)
    audit.record(
        session,
        actor=approver,
        action=AuditAction.image_approve,
        object_type="image",
        object_id=reference,
        detail={"digest": image.digest},
    )
    return image


def retire_image(session: Session, *, actor: str, reference: str, reason: str = "") -> Image:
    """Take an image out of use: no new server starts on it; its projects must move."""
    image = get_image(session, reference)
    if not may_approve_image(get_user(session, actor).roles):
        raise Forbidden(f"{actor!r} may not retire images.", "Only admins retire images.")
    if image.retired:
        raise Conflict(f"image {reference!r} is already retired.")
    image.retired = True
    audit.record(
        session,
        actor=actor,
        action=AuditAction.image_retire,
        object_type="image",
        object_id=reference,
        detail={
            "digest": image.digest,
            "reason": reason,
            "projects": [p.slug for p in projects_on_image(session, image)],
        },
    )
    return image


def projects_on_image(session: Session, image: Image) -> list[Project]:
    """Projects whose servers run on ``image`` (those of a retired image must move)."""
    query = select(Project).where(Project.image_id == image.id).order_by(Project.slug)
    return list(session.scalars(query))
