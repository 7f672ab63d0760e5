"""The running notebook servers, seen and stopped through JupyterHub's REST API.

Only the hub knows which servers run; trenv asks it with a token that may read users and
servers and stop servers (the web service's own ``JUPYTERHUB_API_TOKEN`` with the
``trenv-service`` role, or the operator token for the command line). The token never
grants ``access:servers``: stopping a researcher's server must not open their notebook.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from trenv.config import Settings
from trenv.errors import Invalid

PAGE = 200  # users per hub API call


class HubUnavailable(Invalid):
    """The hub could not be asked (not running, or no token configured)."""


@dataclass(frozen=True)
class RunningServer:
    user: str
    project: str  # from the server's user_options; "" if the hub does not say
    ready: bool
    pending: str  # "", "spawn" or "stop"
    started: dt.datetime | None
    last_activity: dt.datetime | None

    def age(self, now: dt.datetime | None = None) -> dt.timedelta | None:
        if self.started is None:
            return None
        return (now or dt.datetime.now(dt.UTC)) - self.started


class ServerControl(Protocol):
    def running(self) -> list[RunningServer]:
        """Every server that is running, starting or stopping."""
        ...

    def stop(self, username: str) -> str:
        """Ask the hub to stop the user's server; 'stopped', 'stopping' or 'not running'."""
        ...


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def servers_of(model: dict[str, Any]) -> list[RunningServer]:
    """The servers in one hub user model (``GET /users`` with ``read:servers``)."""
    found = []
    for server in (model.get("servers") or {}).values():
        options = server.get("user_options") or {}
        found.append(
            RunningServer(
                user=str(model["name"]),
                project=str(options.get("project") or ""),
                ready=bool(server.get("ready")),
                pending=str(server.get("pending") or ""),
                started=_time(server.get("started")),
                last_activity=_time(server.get("last_activity")),
            )
        )
    return found


@dataclass
class HubServers:
    """The hub's REST API at ``api_url`` (ending in ``/hub/api``) with ``token``."""

    api_url: str
    token: str
    timeout: float = 30.0

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return httpx.request(
                method,
                self.api_url.rstrip("/") + path,
                headers={"Authorization": f"token {self.token}"},
                timeout=self.timeout,
                **kwargs,
            )
        except httpx.HTTPError as error:
            raise HubUnavailable(
                f"the hub API at {self.api_url} did not answer ({error}).",
                "Check that the hub is running (`trenv hub status`).",
            ) from None

    def running(self) -> list[RunningServer]:
        found: list[RunningServer] = []
        offset = 0
        while True:
            reply = self._call(
                "GET", "/users", params={"state": "active", "offset": offset, "limit": PAGE}
            )
            if reply.status_code != 200:
                raise HubUnavailable(
                    f"the hub refused to list servers ({reply.status_code}: {reply.text[:200]})."
                )
            models = reply.json()
            if isinstance(models, dict):  # a paginated reply
                models = models.get("items", [])
            for model in models:
                found.extend(servers_of(model))
            if len(models) < PAGE:
                return found
            offset += PAGE

    def stop(self, username: str) -> str:
        reply = self._call("DELETE", f"/users/{quote(username, safe='')}/server")
        if reply.status_code == 204:
            return "stopped"
        if reply.status_code == 202:
            return "stopping"
        if reply.status_code in (400, 404):  # no such user, or no server running
            return "not running"
        raise HubUnavailable(
            f"the hub refused to stop {username}'s server ({reply.status_code}: "
            f"{reply.text[:200]})."
        )


@dataclass
class NoHub:
    """No hub to ask. When no hub runs at all (``servers_possible`` False) no server can run
    either, so the list is empty; otherwise reading and stopping are refused with the reason."""

    reason: str
    servers_possible: bool = True

    def running(self) -> list[RunningServer]:
        if not self.servers_possible:
            return []
        raise HubUnavailable(self.reason, "Start the hub (`trenv hub start`).")

    def stop(self, username: str) -> str:
        raise HubUnavailable(self.reason, "Start the hub (`trenv hub start`).")


@dataclass
class StaticServers:
    """A fixed table of servers, for tests and development; ``stop`` removes the entry."""

    servers: list[RunningServer] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    on_stop: Callable[[str], None] | None = None

    def running(self) -> list[RunningServer]:
        return list(self.servers)

    def stop(self, username: str) -> str:
        before = len(self.servers)
        self.servers = [s for s in self.servers if s.user != username]
        self.stopped.append(username)
        if self.on_stop is not None:
            self.on_stop(username)
        return "stopped" if len(self.servers) < before else "not running"


def servers_from_env() -> ServerControl:
    """The web service's view: the hub starts it with its API URL and the service's token."""
    url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        return NoHub("this service was not started by the hub (no JUPYTERHUB_API_URL/TOKEN).")
    return HubServers(url, token)


def servers_for_operator(settings: Settings) -> ServerControl:
    """The command line's view: the local hub, through the proxy, with the operator token."""
    from trenv.hub.process import public_url, running_pid
    from trenv.layout import hub_state_dir

    if running_pid(settings) is None:
        return NoHub("the hub is not running.", servers_possible=False)
    token_file = hub_state_dir(settings) / "operator-token"
    if not token_file.is_file():
        return NoHub(f"no operator token at {token_file}.")
    return HubServers(f"{public_url(settings)}/hub/api", token_file.read_text().strip())


def project_servers(servers: list[RunningServer], project: str) -> list[RunningServer]:
    return [s for s in servers if s.project == project]
