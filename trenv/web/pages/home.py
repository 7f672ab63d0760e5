"""The landing page: what the signed-in user can do here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from trenv.web.deps import CurrentUser
from trenv.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "home.html", {"title": "trenv"})
