"""JupyterHub roles and custom scopes for trenv's people and its web service.

trenv's global roles map onto JupyterHub roles carrying ``custom:trenv:*`` scopes, which the
trenv web service checks. A trenv admin can stop servers and read users but is deliberately
*not* given ``access:servers``: running the TRE does not entitle anyone to a researcher's
notebook, where the data is.
"""

from __future__ import annotations

from typing import Any

from trenv.store.models import GlobalRole

SERVICE_NAME = "trenv"
ACCESS_SERVICE = f"access:services!service={SERVICE_NAME}"

CUSTOM_SCOPES: dict[str, dict[str, str]] = {
    "custom:trenv:review": {"description": "Review export requests as an output checker."},
    "custom:trenv:steward": {"description": "Manage datasets and propose data grants."},
    "custom:trenv:admin": {"description": "Administer trenv projects, people and images."},
}

# JupyterHub's default 'user' role carries the 'self' metascope, which includes 'tokens' (mint
# API tokens on /hub/token) and 'users:shares' (share one's server with anyone). A token lets
# a script on the researcher's own machine drive kernels without a browser, and a share opens
# the project's data to a non-member, so trenv's researchers get the rest of 'self' only.
USER_ROLE: dict[str, Any] = {
    "name": "user",
    "description": "A trenv researcher: start, stop and use one's own server; no tokens.",
    "scopes": [
        "read:users!user",
        "users:activity!user",
        "servers!user",
        "access:servers!user",
        ACCESS_SERVICE,
    ],
}

HUB_ROLE_FOR: dict[GlobalRole, str] = {
    GlobalRole.checker: "trenv-checker",
    GlobalRole.steward: "trenv-steward",
    GlobalRole.admin: "trenv-admin",
}

_ROLE_SCOPES: dict[str, list[str]] = {
    "trenv-checker": ["custom:trenv:review", ACCESS_SERVICE],
    "trenv-steward": ["custom:trenv:steward", ACCESS_SERVICE],
    "trenv-admin": [
        "custom:trenv:admin",
        ACCESS_SERVICE,
        "read:users",
        "read:servers",
        "servers",  # start and stop anyone's server, without access to it
    ],
}


def role_definitions(members: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The managed roles, with their current members when known (at hub start-up)."""
    members = members or {}
    return [
        {
            "name": name,
            "description": f"trenv {name.removeprefix('trenv-')}",
            "scopes": scopes,
            "users": sorted(members.get(name, [])),
        }
        for name, scopes in _ROLE_SCOPES.items()
    ]


def hub_roles(global_roles: set[GlobalRole]) -> list[dict[str, Any]]:
    """A user's hub roles as JupyterHub's auth model wants them (role specifications).

    With authenticator-managed roles this list replaces the user's roles, so the ``user``
    role (access to one's own server, see :data:`USER_ROLE`) is named too, with its scopes:
    the hub updates a role's scopes from the spec it is given at login."""
    wanted = {HUB_ROLE_FOR[role] for role in global_roles}
    specs = [
        {k: v for k, v in spec.items() if k != "users"}
        for spec in role_definitions()
        if spec["name"] in wanted
    ]
    return [dict(USER_ROLE), *specs]


def service_role() -> dict[str, Any]:
    """What the trenv web service may do through the hub API."""
    return {
        "name": "trenv-service",
        "description": "The trenv web service: identify users, see and stop servers.",
        # list:users: the admin pages list the running servers (GET /users?state=active).
        "scopes": ["list:users", "read:users", "read:servers", "servers", "read:roles:users"],
        "services": [SERVICE_NAME],
    }
