"""Log in to JupyterHub with a trenv account: password plus a mandatory one-time code.

Written on the registry rather than with a separate authenticator package because the users,
their roles and their second factors live in trenv's registry (NativeAuthenticator keeps its
own user table and sign-up flow, which a TRE must not have). JupyterHub's own login form
asks for the code (``request_otp``); roles are refreshed from the registry at every login.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import default

from trenv.config import get_settings
from trenv.hub.roles import HUB_ROLE_FOR, hub_roles, role_definitions
from trenv.registry.credentials import verify_login
from trenv.registry.users import get_user, list_users
from trenv.store import transaction


class TrenvAuthenticator(Authenticator):
    @default("request_otp")
    def _default_request_otp(self) -> bool:
        return True

    @default("otp_prompt")
    def _default_otp_prompt(self) -> str:
        return "One-time code:"

    @default("manage_roles")
    def _default_manage_roles(self) -> bool:
        return True

    @default("reset_managed_roles_on_startup")
    def _default_reset_managed_roles(self) -> bool:
        # The registry is the source of truth: at start-up, role members are exactly those the
        # registry names (JupyterHub 6.1 also fails on managed members without this).
        return True

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        return True  # who may log in is decided by the registry (an account with credentials)

    async def authenticate(
        self, handler: web.RequestHandler, data: dict[str, str]
    ) -> dict[str, Any] | None:
        username = self.normalize_username(data.get("username", ""))
        result, roles = await asyncio.to_thread(
            self._check, username, data.get("password", ""), data.get("otp", "")
        )
        if not result:
            self.log.warning("trenv login refused for %r", username)
            return None
        return {"name": username, "admin": False, "roles": roles}

    def _check(self, username: str, password: str, otp: str) -> tuple[bool, list[str]]:
        with transaction(get_settings()) as session:
            outcome = verify_login(session, username=username, password=password, otp=otp)
            if not outcome.ok:
                return False, []
            return True, hub_roles(get_user(session, username).roles)

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._current_roles)

    def _current_roles(self) -> list[dict[str, Any]]:
        members: dict[str, list[str]] = {}
        with transaction(get_settings()) as session:
            for user in list_users(session):
                if not user.active:
                    continue
                for role in user.roles:
                    members.setdefault(HUB_ROLE_FOR[role], []).append(user.username)
        return role_definitions(members)
