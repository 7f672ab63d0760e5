"""Server-rendered pages: one Jinja2 environment and a ``render`` that fills the layout.

Every page extends ``base.html`` and gets, besides its own context: ``user`` (or None),
``prefix`` (the service's URL prefix, ending in ``/``), ``nav`` (the links the user's scopes
allow) and ``request``. Autoescaping is on: pass data, never pre-built HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from trenv.web.auth import WebUser

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


@dataclass(frozen=True)
class NavLink:
    label: str
    path: str  # relative to the prefix, e.g. "queue"
    # Shown only to users with this scope (or any of these scopes); None: every signed-in user.
    scope: str | tuple[str, ...] | None


# The header's links, in order. Routers add theirs here (pages may exist before their link).
NAV: list[NavLink] = [
    NavLink("Queue", "queue", "custom:trenv:review"),
    NavLink("Requests", "requests", None),
    NavLink("Admin", "admin", ("custom:trenv:admin", "custom:trenv:steward")),
]


def nav_for(user: WebUser | None) -> list[NavLink]:
    if user is None:
        return []
    return [link for link in NAV if _allowed(user, link.scope)]


def _allowed(user: WebUser, scope: str | tuple[str, ...] | None) -> bool:
    if scope is None:
        return True
    return any(user.has(s) for s in ((scope,) if isinstance(scope, str) else scope))


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """Render ``templates/<name>`` with the layout's context added."""
    user: WebUser | None = getattr(request.state, "user", None)
    full = {
        "user": user,
        "prefix": request.app.state.prefix,
        "nav": nav_for(user),
        "current_path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
