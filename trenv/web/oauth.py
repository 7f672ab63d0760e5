"""Browser login through the hub (OAuth 2 authorization code with PKCE) and logout.

``oauth_login`` stores a random state, the PKCE verifier and the page to return to in a
short-lived encrypted cookie and sends the browser to the hub; the hub (which knows this
service as an OAuth client, ``oauth_no_confirm``) sends it back to ``oauth_callback`` with a
code, exchanged here for a hub token that goes into the encrypted session cookie.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated
from urllib.parse import urlparse

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from trenv.errors import Forbidden
from trenv.web.auth import (
    SESSION_COOKIE,
    SESSION_MAX_AGE,
    STATE_COOKIE,
    STATE_MAX_AGE,
    CookieJar,
    pkce_pair,
)
from trenv.web.deps import AppIdentity

router = APIRouter(include_in_schema=False)


def _secure(request: Request) -> bool:
    """Secure cookies when the browser talks https to the proxy."""
    public = os.environ.get("JUPYTERHUB_PUBLIC_URL", "")
    if public:
        return urlparse(public).scheme == "https"
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return (forwarded or request.url.scheme) == "https"


def _safe_next(request: Request, next_url: str) -> str:
    """Only paths inside this service: never an open redirect to another site."""
    prefix: str = request.app.state.prefix
    if next_url.startswith(prefix) and not next_url.startswith("//") and "\\" not in next_url:
        return next_url
    return prefix


def _set_cookie(request: Request, response: RedirectResponse, name: str, value: str,
                max_age: int) -> None:  # fmt: skip
    response.set_cookie(
        name, value, max_age=max_age, path=request.app.state.prefix, httponly=True,
        secure=_secure(request), samesite="lax",
    )  # fmt: skip


@router.get("/oauth_login")
async def oauth_login(
    request: Request, identity: AppIdentity, next: Annotated[str, Query()] = ""
) -> RedirectResponse:
    jar: CookieJar = request.app.state.cookies
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    response = RedirectResponse(identity.authorize_url(state, challenge), status_code=302)
    sealed = jar.seal({"state": state, "verifier": verifier, "next": _safe_next(request, next)})
    _set_cookie(request, response, STATE_COOKIE, sealed, STATE_MAX_AGE)
    return response


@router.get("/oauth_callback")
async def oauth_callback(
    request: Request,
    identity: AppIdentity,
    code: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
) -> RedirectResponse:
    jar: CookieJar = request.app.state.cookies
    saved = jar.open(request.cookies.get(STATE_COOKIE), STATE_MAX_AGE)
    if not saved or not code or not secrets.compare_digest(str(saved.get("state")), state):
        raise Forbidden("the login could not be verified (state mismatch or expired).",
                        "Start again from the trenv page.")  # fmt: skip
    try:
        token = await identity.token_for_code(code, str(saved["verifier"]))
    except Exception:
        raise Forbidden("the hub did not accept the login code.", "Log in again.") from None
    if await identity.user_for_token(token) is None:
        raise Forbidden("the hub token from the login is not valid.", "Log in again.")
    response = RedirectResponse(_safe_next(request, str(saved.get("next", ""))), status_code=302)
    _set_cookie(request, response, SESSION_COOKIE, jar.seal({"token": token}), SESSION_MAX_AGE)
    response.delete_cookie(STATE_COOKIE, path=request.app.state.prefix)
    return response


@router.get("/logout")
async def logout(request: Request, identity: AppIdentity) -> RedirectResponse:
    response = RedirectResponse(identity.logout_url(), status_code=302)
    response.delete_cookie(SESSION_COOKIE, path=request.app.state.prefix)
    return response
