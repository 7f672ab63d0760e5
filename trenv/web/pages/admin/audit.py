"""The audit log: filterable, with the chain's verification status."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from trenv import audit
from trenv.admin.auditlog import AuditFilter, detail_text, search
from trenv.web.deps import AppSettings, DbSession
from trenv.web.flash import page
from trenv.web.pages.admin.common import Governance

router = APIRouter(include_in_schema=False)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: Governance,
    session: DbSession,
    settings: AppSettings,
    action: str = "",
    actor: str = "",
    object: str = "",
    limit: int = 200,
) -> Response:
    wanted = AuditFilter(action=action.strip(), actor=actor.strip(), object=object.strip(),
                         limit=limit)  # fmt: skip
    return page(
        request,
        "admin/audit.html",
        {
            "title": "Audit log",
            "events": search(session, wanted),
            "detail_text": detail_text,
            "verification": audit.verify(session, settings.audit_anchor),
            "filters": wanted,
        },
    )
