"""Who is calling: JupyterHub's hub-managed-service conventions behind a small protocol.

Two ways in, both ending in a hub token that the hub resolves to a user and its scopes:

- API calls carry ``Authorization: token <hub token>`` (a notebook server's own
  ``JUPYTERHUB_API_TOKEN`` from inside its container, or a user's API token);
- browsers log in with OAuth against the hub (``oauth_login`` -> hub -> ``oauth_callback``);
  the token obtained is kept in an encrypted, HttpOnly, SameSite=Lax cookie.

:class:`HubIdentity` talks to the hub (production); :class:`StaticIdentity` answers from a
table, so the API can be tested with FastAPI's TestClient and no hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from cryptography.fernet import Fernet, InvalidToken

from trenv.hub.roles import ACCESS_SERVICE

SESSION_COOKIE = "trenv-session"
STATE_COOKIE = "trenv-oauth-state"
SESSION_MAX_AGE = 8 * 3600  # a working day; the hub token's own expiry still applies
STATE_MAX_AGE = 600


@dataclass(frozen=True)
class WebUser:
    """A caller as the hub resolved its token."""

    name: str
    scopes: frozenset[str] = frozenset()
    from_server: bool = False  # the token is a notebook server's own token

    def has(self, scope: str) -> bool:
        return scope in self.scopes


def is_server_token(name: str, scopes: frozenset[str]) -> bool:
    """A notebook server's token carries only the spawner's ``server_token_scopes``.

    The hub does not say which kind of token it resolved; a server token is recognised by
    its scopes (access to its own server, activity, this service) and nothing more. This is
    informational: access decisions use scopes and :meth:`Identity.server_project`.
    """
    own_server = f"access:servers!server={name}/"

    def from_server_token_scopes(scope: str) -> bool:
        # users:activity!user expands to read:users:activity, read:users:name, ... !user=name
        activity = scope.startswith(("users:activity!", "read:users")) and scope.endswith(
            f"!user={name}"
        )
        return activity or scope in {own_server, ACCESS_SERVICE}

    return own_server in scopes and all(from_server_token_scopes(s) for s in scopes)


class Identity(Protocol):
    """What the web service needs to know from the hub."""

    async def user_for_token(self, token: str) -> WebUser | None:
        """The user a hub token belongs to, or None for an unknown or expired token."""
        ...

    async def server_project(self, username: str) -> str | None:
        """The project of the user's running, ready server, or None."""
        ...

    def authorize_url(self, state: str, code_challenge: str) -> str:
        """Where a browser goes to log in (the hub's OAuth authorize endpoint)."""
        ...

    async def token_for_code(self, code: str, code_verifier: str) -> str:
        """Exchange an OAuth code for a hub token (last step of a browser login)."""
        ...

    def logout_url(self) -> str:
        """Where a browser goes after leaving trenv (the hub's logout)."""
        ...


@dataclass
class StaticIdentity:
    """A fixed table of tokens, servers and OAuth codes: for tests and local development."""

    users: dict[str, WebUser] = field(default_factory=dict)  # token -> user
    servers: dict[str, str] = field(default_factory=dict)  # username -> project of the server
    codes: dict[str, str] = field(default_factory=dict)  # OAuth code -> token

    async def user_for_token(self, token: str) -> WebUser | None:
        return self.users.get(token)

    async def server_project(self, username: str) -> str | None:
        return self.servers.get(username)

    def authorize_url(self, state: str, code_challenge: str) -> str:
        query = urlencode({"client_id": "service-trenv", "state": state,
                           "code_challenge": code_challenge})  # fmt: skip
        return f"/hub/api/oauth2/authorize?{query}"

    async def token_for_code(self, code: str, code_verifier: str) -> str:
        try:
            return self.codes[code]
        except KeyError:
            raise PermissionError("unknown OAuth code") from None

    def logout_url(self) -> str:
        return "/hub/logout"


class HubIdentity:
    """Production identity: JupyterHub's ``HubOAuth`` configured from the service's env.

    The hub starts this service with ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``,
    ``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_OAUTH_CALLBACK_URL`` and friends; HubOAuth reads
    them. Token lookups are cached by HubOAuth for ``cache_max_age`` seconds; server lookups
    are not cached, so a stopped server loses access at once.
    """

    def __init__(self, cache_max_age: int = 60) -> None:
        from jupyterhub.services.auth import HubOAuth

        self.auth = HubOAuth(cache_max_age=cache_max_age)

    async def user_for_token(self, token: str) -> WebUser | None:
        model = await self.auth.user_for_token(token, sync=False)
        if not model or model.get("kind", "user") != "user":
            return None  # unknown token, or a service's token: services are not people
        name = str(model["name"])
        scopes = frozenset(model.get("scopes") or [])
        return WebUser(name=name, scopes=scopes, from_server=is_server_token(name, scopes))

    async def server_project(self, username: str) -> str | None:
        from urllib.parse import quote

        url = f"{self.auth.api_url.rstrip('/')}/users/{quote(username, safe='')}"
        model = await self.auth._api_request("GET", url, allow_403=True)
        if not model:
            return None
        server = (model.get("servers") or {}).get("")
        if not server or not server.get("ready"):
            return None  # starting or stopping servers do not count
        project = (server.get("user_options") or {}).get("project")
        return str(project) if project else None

    def authorize_url(self, state: str, code_challenge: str) -> str:
        query = urlencode(
            {"state": state, "code_challenge": code_challenge, "code_challenge_method": "S256"}
        )
        return f"{self.auth.login_url}&{query}"

    async def token_for_code(self, code: str, code_verifier: str) -> str:
        token: str = await self.auth.token_for_code(code, code_verifier=code_verifier, sync=False)
        return token

    def logout_url(self) -> str:
        return f"{self.auth.hub_host}{self.auth.hub_prefix}logout"


# --- browser session cookies ----------------------------------------------------------------


def load_cookie_key(path: Path) -> bytes:
    """The Fernet key that encrypts session cookies (``trenv.layout.web_cookie_secret_file``).

    Created on first use with owner-only permissions; deleting it logs everyone out.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class CookieJar:
    """Encrypts and authenticates what the service keeps in cookies (Fernet, with a TTL)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, sealed: str | None, max_age: int) -> dict[str, Any] | None:
        if not sealed:
            return None
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) for the OAuth login (RFC 7636)."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")
