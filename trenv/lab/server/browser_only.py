"""The notebook server answers only a browser login, never an API token.

JupyterLab in the browser authenticates with the OAuth token the hub issued to this server at
login; that token belongs to a login session (the hub records its ``session_id``). Every other
hub token — a personal API token, or this server's own ``JUPYTERHUB_API_TOKEN`` read from the
environment in a notebook — has no session. Such a token would let a script on the
researcher's own machine drive kernels without a browser, so it is refused here, whatever its
scopes (researchers also lack the ``tokens`` scope to mint one: trenv.hub.roles).

This does not make a browser session weaker than a token: what either can take out is judged
by content and metered (kernel_output, guards, meter); this closes the path that needs no
login at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.auth.identity import IdentityProvider
from tornado import web

from trenv.lab.server.decisions import EXPORT_HINT

TOKEN_REFUSAL = (
    "This notebook server answers only your browser login, not API tokens: log in to the "
    "research environment in a browser. " + EXPORT_HINT
)


def token_without_session(hub_user: dict[str, Any] | None) -> bool:
    """Did the hub identify this request by a token that belongs to no login session?"""
    if not hub_user:
        return False
    return hub_user.get("session_id") is None


def require_browser_session(provider: IdentityProvider, report: Callable[[str], None]) -> None:
    """Wrap ``provider.get_user`` so that session-less hub tokens get 403.

    Applied to the instance at extension load: jupyterhub-singleuser sets its own identity
    provider class, and every handler (HTTP and websocket) asks this instance.
    """
    original: Callable[[web.RequestHandler], Any] = provider.get_user

    async def get_user(handler: web.RequestHandler) -> Any:
        result = original(handler)
        user = await result if isinstance(result, Awaitable) else result
        if user is not None and token_without_session(getattr(user, "hub_user", None)):
            report(handler.request.path)
            raise web.HTTPError(403, TOKEN_REFUSAL)
        return user

    provider.get_user = get_user  # type: ignore[method-assign]
