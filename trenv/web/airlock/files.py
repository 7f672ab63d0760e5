"""Which bytes of a request's files reach a browser: the raw file to the checkers reviewing
it, a coarse server-rendered preview of a figure to everyone else who may see the request.

The researcher's browser is outside the TRE, so serving the frozen bytes of an unreleased
file to the requester (or a colleague) would be an export without review: a draft holding a
PNG with a dataset in its pixels or text chunks, fetched from home. Who gets bytes is
:func:`trenv.airlock.permissions.may_read_file_bytes`; everyone else gets
:func:`trenv.judge.image.coarse_preview_png`, which shows the figure but cannot carry the
file it was made from.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace
from urllib.parse import quote

from fastapi import Response
from sqlalchemy.orm import Session

from trenv import audit
from trenv.airlock import permissions as may
from trenv.airlock.permissions import Actor
from trenv.airlock.queries import RequestContext, frozen_bytes
from trenv.audit_actions import AuditAction
from trenv.config import Settings
from trenv.errors import Forbidden, NotFound
from trenv.judge.image import ImageRefused, coarse_preview_png
from trenv.store.models import ExportRequest, RequestFile
from trenv.web.airlock.caller import Caller
from trenv.web.airlock.preview import CHECKER_DOWNLOAD_TYPES, INLINE_TYPES
from trenv.web.deps import REVIEW

BUNDLE_ONLY = (
    "Files leave the TRE only in a released bundle; the request page shows a preview of "
    "each figure."
)
# Nothing of an unreleased file is kept by a browser or a proxy, or guessed into another type.
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def reviewing_actor(caller: Caller, actor: Actor) -> Actor:
    """The caller as the review sees them: a checker in the registry counts as one only with
    the hub's review scope too, as for votes."""
    return replace(actor, is_checker=actor.is_checker and caller.user.has(REVIEW))


def may_read_bytes(caller: Caller, ctx: RequestContext) -> bool:
    return may.may_read_file_bytes(reviewing_actor(caller, ctx.actor), ctx.facts)


def _why_not(actor: Actor, req: ExportRequest) -> str:
    if actor.username == req.requester:
        return (
            f"request {req.id} is yours: its files are not sent to your browser before they "
            "are released."
        )
    if actor.project_member:
        return (
            f"you are or were a member of project {req.project.slug}: unreleased files of its "
            "requests are not sent to its members."
        )
    if actor.in_container:
        return "the files of a request are not sent into a notebook container."
    if not actor.is_checker:
        return (
            "only independent output checkers (with the custom:trenv:review scope) read the "
            "files of a request under review."
        )
    state = req.state.value.replace("_", " ")
    return (
        f"request {req.id} is {state}: its files go to checkers only while it waits for or "
        "is under review."
    )


def require_bytes(caller: Caller, ctx: RequestContext) -> None:
    """Forbidden, naming why and the way out, unless the caller may read the raw bytes."""
    reviewer = reviewing_actor(caller, ctx.actor)
    if not may.may_read_file_bytes(reviewer, ctx.facts):
        raise Forbidden(_why_not(reviewer, ctx.request), BUNDLE_ONLY)


def audit_refusal(session: Session, username: str, row: RequestFile, why: str) -> None:
    """A refused read of a file's bytes is an attempt at export: it goes in the audit log."""
    audit.record(
        session,
        actor=username,
        action=AuditAction.airlock_file_refused,
        object_type="export_request",
        object_id=row.request_id,
        detail={"file_id": row.id, "path": row.path, "why": why},
    )


def file_row(req: ExportRequest, file_id: int) -> RequestFile:
    row = next((f for f in req.files if f.id == file_id), None)
    if row is None:
        raise NotFound(f"file {file_id} is not part of request {req.id}.", "See the request page.")
    return row


def _disposition(kind: str, name: str) -> str:
    ascii_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def raw_response(settings: Settings, row: RequestFile) -> Response:
    """The frozen bytes (for a caller :func:`require_bytes` admitted): a PNG inline for the
    page's ``<img>``, a PDF as a download; tables, text and notebooks are never served raw,
    their previews are in the page."""
    if row.media_type in INLINE_TYPES:
        disposition = "inline"
    elif row.media_type in CHECKER_DOWNLOAD_TYPES:
        disposition = "attachment"
    else:
        raise NotFound(
            f"{row.path} is not served as a file.",
            "Its preview is on the request page; files leave the TRE only by a release.",
        )
    return Response(
        content=frozen_bytes(settings, row.sha256),
        media_type=row.media_type,
        headers={
            "Content-Disposition": _disposition(disposition, posixpath.basename(row.path)),
            **NO_STORE,
        },
    )


def preview_response(settings: Settings, row: RequestFile) -> Response:
    """A coarse PNG preview of a frozen figure, rendered on the server for any caller who may
    see the request."""
    if row.media_type not in INLINE_TYPES:
        raise NotFound(f"{row.path} has no image preview.", "Its preview is on the request page.")
    try:
        data = coarse_preview_png(frozen_bytes(settings, row.sha256))
    except ImageRefused as exc:
        raise NotFound(
            f"no preview of {row.path}: {exc}.", "A checker sees the file itself."
        ) from None
    stem = posixpath.splitext(posixpath.basename(row.path))[0]
    return Response(
        content=data,
        media_type="image/png",
        headers={"Content-Disposition": _disposition("inline", f"{stem}-preview.png"), **NO_STORE},
    )
