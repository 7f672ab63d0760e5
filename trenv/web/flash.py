"""Post/redirect/get for the server-rendered pages, with a one-time notice (a "flash").

A form posts to a route that runs a service function and redirects (303) back; the outcome
travels in a short-lived encrypted cookie and is shown once on the page it lands on. A
refusal rolls the request's transaction back, so nothing of a refused action is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from trenv.errors import TrenvError
from trenv.web.auth import CookieJar
from trenv.web.oauth import _secure as secure_cookies
from trenv.web.templating import render

FLASH_COOKIE = "trenv-flash"
FLASH_MAX_AGE = 120


def _jar(request: Request) -> CookieJar:
    jar: CookieJar = request.app.state.cookies
    return jar


def redirect(request: Request, to: str, kind: str, text: str, fix: str | None = None) -> Response:
    response = RedirectResponse(to, status_code=303)
    sealed = _jar(request).seal({"kind": kind, "text": text, "fix": fix})
    response.set_cookie(
        FLASH_COOKIE,
        sealed,
        max_age=FLASH_MAX_AGE,
        path=request.app.state.prefix,
        httponly=True,
        secure=secure_cookies(request),  # as the session cookie: https behind the proxy
        samesite="lax",
    )
    return response


def take_flash(request: Request) -> dict[str, Any] | None:
    return _jar(request).open(request.cookies.get(FLASH_COOKIE), FLASH_MAX_AGE)


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    flash = take_flash(request)
    response = render(request, name, {**context, "flash": flash}, status_code=status_code)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path=request.app.state.prefix)
    return response


def act(
    request: Request, session: Session, action: Callable[[], str], back: str, failed: str
) -> Response:
    """Run ``action`` (which returns a confirmation); on a refusal undo everything it did
    and go back to ``failed`` with the reason."""
    try:
        done = action()
    except TrenvError as exc:
        session.rollback()
        return redirect(request, failed, "fail", exc.problem, exc.fix)
    return redirect(request, back, "pass", done)


def url(request: Request, path: str) -> str:
    prefix: str = request.app.state.prefix
    return prefix + path
