"""Log in through an institutional identity provider (OpenID Connect).

Uses oauthenticator's GenericOAuthenticator; trenv adds only the registry check: the
identity provider proves who someone is, the registry decides whether they are a trenv user
and which roles they hold. The provider must enforce multi-factor authentication (ask it for
an MFA policy on this client); trenv cannot see the second factor in this mode.
"""

from __future__ import annotations

import asyncio
from typing import Any

from oauthenticator.generic import GenericOAuthenticator

from trenv.config import Settings, get_settings
from trenv.errors import Invalid
from trenv.hub.auth import TrenvAuthenticator
from trenv.hub.roles import hub_roles
from trenv.registry.users import get_user
from trenv.store import transaction

REQUIRED = ("oidc_client_id", "oidc_authorize_url", "oidc_token_url", "oidc_userdata_url")


class TrenvOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator that admits only active registry users, with registry roles."""

    async def authenticate(self, handler: Any, data: Any = None) -> dict[str, Any] | None:
        model = await super().authenticate(handler, data)
        if model is None:
            return None
        username = self.normalize_username(model["name"])
        roles = await asyncio.to_thread(_registry_roles, username)
        if roles is None:
            self.log.warning("OIDC login of %r refused: not an active trenv user", username)
            return None
        return {**model, "name": username, "admin": False, "roles": roles}

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        return await TrenvAuthenticator.load_managed_roles(self)  # type: ignore[arg-type]

    def _current_roles(self) -> list[dict[str, Any]]:
        return TrenvAuthenticator._current_roles(self)  # type: ignore[arg-type]


def _registry_roles(username: str) -> list[str] | None:
    from trenv.errors import NotFound

    with transaction(get_settings()) as session:
        try:
            user = get_user(session, username)
        except NotFound:
            return None
        return hub_roles(user.roles) if user.active else None


def configure_oidc(c: Any, settings: Settings) -> None:
    missing = [name for name in REQUIRED if not getattr(settings, name)]
    if missing:
        raise Invalid(
            f"auth_backend is 'oidc' but {', '.join('TRENV_' + m.upper() for m in missing)} "
            "is not set.",
            "Set the identity provider's client id and endpoints (see docs/hub.md).",
        )
    c.JupyterHub.authenticator_class = TrenvOIDCAuthenticator
    auth = c.TrenvOIDCAuthenticator
    auth.client_id = settings.oidc_client_id
    auth.client_secret = settings.oidc_client_secret
    auth.authorize_url = settings.oidc_authorize_url
    auth.token_url = settings.oidc_token_url
    auth.userdata_url = settings.oidc_userdata_url
    auth.oauth_callback_url = settings.oidc_callback_url
    auth.username_claim = settings.oidc_username_claim
    auth.scope = ["openid", "profile", "email"]
    auth.login_service = "your institution"
    auth.enable_pkce = True
    auth.manage_roles = True
    auth.reset_managed_roles_on_startup = True
    auth.allow_all = True  # admission is decided by the registry in authenticate()
