"""The landing page: what the signed-in user can do here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from trenv.web.deps import CurrentUser, DbSession
from trenv.web.pages.admin.common import controlled_suppliers, is_governance
from trenv.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser, session: DbSession) -> HTMLResponse:
    # A supplier's data controller holds no hub scope of their own; their door to the
    # grants waiting for them is this card.
    controller = not is_governance(user) and bool(controlled_suppliers(session, user.name))
    return render(request, "home.html", {"title": "trenv", "controller": controller})
