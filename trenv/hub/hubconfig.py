"""Everything `hub_config/jupyterhub_config.py` sets, as a function of trenv's settings.

Kept in the package (the config file only calls :func:`configure`) so that the hub's
configuration is importable, typed and tested like any other code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from trenv import layout
from trenv.config import Settings
from trenv.hub import roles
from trenv.hub.network import NetworkSpec, ensure_network, gateway_of

OPERATOR_SERVICE = "trenv-operator"
OPERATOR_TOKEN_ENV = "TRENV_HUB_OPERATOR_TOKEN"
CONTAINER_SUBNETS_ENV = "TRENV_CONTAINER_SUBNETS"


def network_spec(settings: Settings) -> NetworkSpec:
    return NetworkSpec(
        name=settings.network_name,
        bridge=settings.bridge_name,
        allowed_ports=(settings.hub_api_port, settings.web_api_port),
    )


def hub_state_dir(settings: Settings) -> Any:
    path = layout.hub_state_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def configure(
    c: Any,
    settings: Settings,
    *,
    gateway: str | None = None,
    container_subnets: Sequence[str] = (),
) -> None:
    """Fill a JupyterHub traitlets config ``c`` for this installation.

    ``gateway`` (the bridge's gateway address, where containers reach the hub) and the
    network's ``container_subnets`` are looked up by creating or checking the locked-down
    network unless a gateway is given (tests of the config alone).
    """
    if gateway is None:
        import docker

        network = ensure_network(docker.from_env(), network_spec(settings))
        gateway = gateway_of(network)
        container_subnets = subnets_of(network)
    state = hub_state_dir(settings)
    hub_api = f"http://{gateway}:{settings.hub_api_port}"

    c.JupyterHub.bind_url = f"http://{settings.hub_public_ip}:{settings.hub_public_port}"
    c.JupyterHub.hub_bind_url = hub_api
    c.JupyterHub.hub_connect_url = hub_api
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.ConfigurableHTTPProxy.command = [settings.proxy_command]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.allow_named_servers = False
    c.JupyterHub.tornado_settings = {
        "cookie_options": {"SameSite": "Strict"},
        "headers": {"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"},
    }

    _configure_auth(c, settings)
    _configure_spawner(c, settings, hub_api)
    _configure_roles_and_services(c, settings, gateway, container_subnets)


def _configure_auth(c: Any, settings: Settings) -> None:
    if settings.auth_backend == "oidc":
        from trenv.hub.oidc import configure_oidc

        configure_oidc(c, settings)
        return
    c.JupyterHub.authenticator_class = "trenv.hub.auth.TrenvAuthenticator"


def _configure_spawner(c: Any, settings: Settings, hub_api: str) -> None:
    c.JupyterHub.spawner_class = "trenv.hub.spawner.TrenvSpawner"
    spawner = c.TrenvSpawner
    spawner.network_name = settings.network_name
    spawner.hub_connect_url = hub_api
    spawner.prefix = f"trenv-{settings.bridge_name}"  # containers of one installation only
    spawner.mem_limit = settings.container_mem_limit
    spawner.cpu_limit = settings.container_cpu_limit
    spawner.pids_limit = settings.container_pids_limit
    spawner.tmpfs_size = settings.container_tmp_size
    spawner.notebook_dir = "/home/jovyan/work"
    spawner.default_url = "/lab"
    spawner.cmd = ["jupyterhub-singleuser"]
    spawner.start_timeout = 120
    spawner.http_timeout = 90
    # The server's own token may call the trenv service (DP queries, export requests).
    spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        roles.ACCESS_SERVICE,
    ]


def web_service_url(settings: Settings, gateway: str) -> str:
    """Where the trenv web service listens: on the bridge gateway, so that containers (through
    the firewall's allowed port) and the proxy both reach it."""
    return f"http://{gateway}:{settings.web_api_port}"


def subnets_of(network: Any) -> list[str]:
    """The CIDRs Docker gave the containers' network (IPAM config)."""
    configs = network.attrs.get("IPAM", {}).get("Config") or []
    return [str(cfg["Subnet"]) for cfg in configs if cfg.get("Subnet")]


def web_service(
    settings: Settings, gateway: str, container_subnets: Sequence[str] = ()
) -> dict[str, Any]:
    """The hub-managed trenv web service (trenv/web): started and stopped with the hub."""
    environment = settings.as_environment()
    environment.pop("TRENV_OIDC_CLIENT_SECRET", None)  # the hub's secret, not the service's
    # Calls from these addresses are from containers: no release or download into them
    # (read by trenv/web/network_origin.py).
    environment[CONTAINER_SUBNETS_ENV] = ",".join(container_subnets)
    return {
        "name": roles.SERVICE_NAME,
        "command": [sys.executable, "-m", "trenv.web"],
        "url": web_service_url(settings, gateway),
        "environment": environment,
        # Logging in to trenv is part of logging in to the TRE: no extra consent page.
        "oauth_no_confirm": True,
        # What a browser login's token may carry: identity, the custom trenv scopes (so the
        # pages can tell checkers and admins apart) and access to this service.
        "oauth_client_allowed_scopes": [
            *roles.CUSTOM_SCOPES,
            roles.ACCESS_SERVICE,
            "read:users:name!user",
        ],
        "display": True,
        "info": {"description": "Airlock, administration and the DP query API"},
    }


def _configure_roles_and_services(
    c: Any, settings: Settings, gateway: str, container_subnets: Sequence[str] = ()
) -> None:
    c.JupyterHub.custom_scopes = roles.CUSTOM_SCOPES
    c.JupyterHub.extra_user_scopes = [roles.ACCESS_SERVICE]
    services: list[dict[str, Any]] = [web_service(settings, gateway, container_subnets)]
    load_roles: list[dict[str, Any]] = []
    operator_token = os.environ.get(OPERATOR_TOKEN_ENV)
    if operator_token:
        # Host automation (`make demo`, tests): may manage users, servers and tokens, but is
        # not given access to the servers themselves.
        services.append({"name": OPERATOR_SERVICE, "api_token": operator_token})
        load_roles.append(
            {
                "name": "trenv-operator",
                "scopes": ["admin:users", "admin:servers", "tokens", "list:users"],
                "services": [OPERATOR_SERVICE],
            }
        )
    load_roles.append(dict(roles.USER_ROLE))  # no 'tokens', no 'users:shares' (roles.py)
    load_roles.append(roles.service_role())
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = load_roles
