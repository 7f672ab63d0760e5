"""The trenv web service: a FastAPI app served under the hub's service prefix.

JupyterHub's proxy forwards ``/services/trenv/...`` to this service *without* stripping the
prefix, and containers call it directly at ``http://<gateway>:<port>/services/trenv/api``,
so every route lives under the prefix:

    <prefix>api/...         JSON API (routers in trenv/web/api/ and trenv/web/airlock/api.py),
                            OpenAPI at api/openapi.json
    <prefix>...             server-rendered pages (routers in trenv/web/pages/ and
                            trenv/web/airlock/pages.py)
    <prefix>static/...      CSS (and any script) from trenv/web/static/
    <prefix>oauth_login, oauth_callback, logout   browser login (trenv/web/oauth.py)

To add a router, write ``router = APIRouter(prefix="/things", tags=["things"])`` in
``trenv/web/api/things.py`` (or ``pages/things.py``) and add one line to
:func:`include_routers`. Errors: raise :mod:`trenv.errors` exceptions; they become JSON
``{"problem", "fix"}`` on API paths and the error page elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from trenv.admin.servers import ServerControl, servers_from_env
from trenv.config import Settings
from trenv.errors import Invalid, TrenvError
from trenv.layout import web_cookie_secret_file
from trenv.web.auth import CookieJar, Identity, load_cookie_key
from trenv.web.deps import NotAuthenticated
from trenv.web.templating import HERE, render
from trenv.wire.errors import VALIDATION_FIX, validation_problem

DEFAULT_PREFIX = "/services/trenv/"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def service_prefix() -> str:
    """The URL prefix the hub gave this service (``JUPYTERHUB_SERVICE_PREFIX``), with slashes."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or DEFAULT_PREFIX
    return "/" + prefix.strip("/") + "/"


def include_routers(app: FastAPI, prefix: str) -> None:
    """Every router of the service. API routers go under ``<prefix>api``, pages under ``prefix``."""
    from trenv.web import oauth
    from trenv.web.airlock import api as airlock_api
    from trenv.web.airlock import pages as airlock_pages
    from trenv.web.api import differencing as differencing_api
    from trenv.web.api import dp as dp_api
    from trenv.web.api import egress as egress_api
    from trenv.web.api import me as me_api
    from trenv.web.pages import admin as admin_pages
    from trenv.web.pages import apidocs, home

    api = prefix + "api"
    app.include_router(me_api.router, prefix=api)
    app.include_router(dp_api.router, prefix=api)
    app.include_router(differencing_api.router, prefix=api)
    app.include_router(egress_api.router, prefix=api)
    app.include_router(airlock_api.router, prefix=api)
    app.include_router(oauth.router, prefix=prefix.rstrip("/"))
    app.include_router(home.router, prefix=prefix.rstrip("/"))
    app.include_router(airlock_pages.router, prefix=prefix.rstrip("/"))
    app.include_router(admin_pages.router, prefix=prefix.rstrip("/"))
    app.include_router(apidocs.router, prefix=api)


def create_app(
    settings: Settings, identity: Identity | None = None, servers: ServerControl | None = None
) -> FastAPI:
    """The service for ``settings``; ``identity`` defaults to the hub (HubIdentity) and
    ``servers`` (the notebook servers, seen and stopped) to the hub's API with the service's
    own token."""
    if servers is None:
        servers = servers_from_env()
    if identity is None:
        from trenv.web.auth import HubIdentity

        identity = HubIdentity()
    prefix = service_prefix()
    app = FastAPI(
        title="trenv",
        summary="Trusted research environment: DP query API, airlock, administration.",
        openapi_url=f"{prefix}api/openapi.json",
        # Swagger UI would load scripts from a CDN (unreachable in a TRE, and against the
        # CSP); pages/apidocs.py renders the description server-side at api/docs instead.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.identity = identity
    app.state.servers = servers
    app.state.prefix = prefix
    app.state.cookies = CookieJar(load_cookie_key(web_cookie_secret_file(settings)))
    app.middleware("http")(_security_headers)
    _install_error_handlers(app, prefix)
    app.mount(f"{prefix}static", StaticFiles(directory=HERE / "static"), name="static")
    include_routers(app, prefix)
    return app


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")  # pages show confidential data
    return response


def _is_api(request: Request, prefix: str) -> bool:
    path = request.url.path
    return path.startswith(prefix + "api/") or "html" not in request.headers.get("accept", "")


def _problem(request: Request, prefix: str, status: int, problem: str, fix: str | None) -> Response:
    if _is_api(request, prefix):
        return JSONResponse({"problem": problem, "fix": fix}, status_code=status)
    return render(
        request, "error.html", {"status": status, "problem": problem, "fix": fix},
        status_code=status,
    )  # fmt: skip


def _install_error_handlers(app: FastAPI, prefix: str) -> None:
    @app.exception_handler(TrenvError)
    async def trenv_error(request: Request, exc: TrenvError) -> Response:
        # Invalid input is a plain 400 for clients; the other classes keep their status.
        status = 400 if isinstance(exc, Invalid) else exc.status_code
        return _problem(request, prefix, status, exc.problem, exc.fix)

    @app.exception_handler(ValidationError)
    async def model_error(request: Request, exc: ValidationError) -> Response:
        # Raised by our own models (e.g. a DP QuerySpec): their messages carry the fix.
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        return _problem(request, prefix, 400, problems, None)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> Response:
        # The same words the lab raises when it refuses the body before sending it.
        problem = validation_problem(exc.errors())
        return _problem(request, prefix, 400, problem, VALIDATION_FIX)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _is_api(request, prefix):
            return JSONResponse(
                {"problem": "no valid hub token.",
                 "fix": "Send 'Authorization: token <your JupyterHub API token>'."},
                status_code=401,
                headers={"WWW-Authenticate": "token"},
            )  # fmt: skip
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        return RedirectResponse(f"{prefix}oauth_login?next={quote(target)}", status_code=302)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _problem(request, prefix, exc.status_code, str(exc.detail), None)
