"""FastAPI dependencies shared by every router: settings, the caller, scopes, a DB session.

Use them in a route like this::

    @router.get("/things")
    def things(user: CurrentUser, session: DbSession) -> list[Thing]: ...

    @router.post("/reviews", dependencies=[Depends(require_scope(REVIEW))])
    def review(...): ...

An unauthenticated call raises :class:`NotAuthenticated`: API paths answer 401 (JSON),
pages redirect the browser to the OAuth login (see ``app.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from trenv.config import Settings
from trenv.errors import Forbidden
from trenv.store.engine import transaction
from trenv.store.models import User
from trenv.web.auth import SESSION_COOKIE, SESSION_MAX_AGE, CookieJar, Identity, WebUser

REVIEW = "custom:trenv:review"
STEWARD = "custom:trenv:steward"
ADMIN = "custom:trenv:admin"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotAuthenticated(Exception):
    """No valid hub token came with the request."""


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


def request_token(request: Request) -> tuple[str | None, bool]:
    """(the hub token of this request, whether it came from the session cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in {"token", "bearer"} and value.strip():
        return value.strip(), False
    jar: CookieJar = request.app.state.cookies
    session = jar.open(request.cookies.get(SESSION_COOKIE), SESSION_MAX_AGE)
    if session and isinstance(session.get("token"), str):
        return session["token"], True
    return None, False


def _deactivated(settings: Settings, username: str) -> bool:
    """True when the registry knows ``username`` and has deactivated the account."""
    with transaction(settings) as session:
        active = session.scalar(select(User.active).where(User.username == username))
    return active is False


def _check_same_origin(request: Request) -> None:
    """Cookie-authenticated writes must come from our own pages.

    SameSite=Lax already keeps the cookie off cross-site POSTs; this also refuses a write
    whose Origin is another site (defence in depth against CSRF).
    """
    if request.method not in UNSAFE_METHODS:
        return
    if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
        raise Forbidden("cross-site request refused.", "Use the trenv pages themselves.")
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise Forbidden("cross-origin request refused.", "Use the trenv pages themselves.")


async def optional_user(request: Request) -> WebUser | None:
    """The caller, or None when no valid token came with the request (public pages)."""
    if hasattr(request.state, "user"):
        cached: WebUser | None = request.state.user
        return cached
    token, from_cookie = request_token(request)
    user = await get_identity(request).user_for_token(token) if token else None
    if user is not None and from_cookie:
        _check_same_origin(request)
    if user is not None and _deactivated(get_settings(request), user.name):
        # A hub token outlives a deactivation (and the hub's cache); the registry decides.
        raise Forbidden(f"account {user.name!r} is deactivated.", "Ask an administrator.")
    request.state.user = user
    return user


async def current_user(user: Annotated[WebUser | None, Depends(optional_user)]) -> WebUser:
    """The authenticated caller; 401 (API) or a login redirect (pages) otherwise."""
    if user is None:
        raise NotAuthenticated()
    return user


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, WebUser]]:
    """A dependency that admits only callers whose hub token carries ``scope``.

    A notebook server's token never carries ``custom:trenv:*`` scopes, so code running in a
    container can never act as a checker or an administrator.
    """

    async def dependency(user: Annotated[WebUser, Depends(current_user)]) -> WebUser:
        if not user.has(scope):
            raise Forbidden(
                f"{user.name!r} lacks the scope {scope}.",
                "Ask an administrator for the role that grants it.",
            )
        return user

    dependency.__name__ = f"require_{scope.rsplit(':', 1)[-1]}"
    return dependency


def db_session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    """One transaction per request: committed after the route returns, rolled back on error."""
    with transaction(settings) as session:
        yield session


CurrentUser = Annotated[WebUser, Depends(current_user)]
OptionalUser = Annotated[WebUser | None, Depends(optional_user)]
# scope="function": commit before the response is sent, so a reply never claims a change
# that failed to commit.
DbSession = Annotated[Session, Depends(db_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]
AppIdentity = Annotated[Identity, Depends(get_identity)]
Reviewer = Annotated[WebUser, Depends(require_scope(REVIEW))]
Steward = Annotated[WebUser, Depends(require_scope(STEWARD))]
Admin = Annotated[WebUser, Depends(require_scope(ADMIN))]


async def server_project(user: CurrentUser, identity: AppIdentity) -> str:
    """The project of the caller's running server: what a notebook asks of the API (DP
    queries, the differencing check) is always about that project, never one it names."""
    project = await identity.server_project(user.name)
    if project is None:
        raise Forbidden(
            f"{user.name!r} has no running notebook server.",
            "This runs for the project of your running server: start it from the hub.",
        )
    return project


ServerProject = Annotated[str, Depends(server_project)]
