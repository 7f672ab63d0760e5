"""The extension's own endpoints under ``<server>/trenv/``, used by the Outputs panel.

``config`` and ``outputs`` are answered here; ``requests`` and ``budget`` are forwarded to
the trenv web API with the *server's* token (``JUPYTERHUB_API_TOKEN``), never the
browser's credentials: the web API then knows the request comes from this project's
notebook server (a server token is confined to its server's project), whoever holds the
browser session.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from tornado import web

from trenv.lab import session
from trenv.lab.api import ApiError, AsyncApi
from trenv.lab.server.config import TrenvLab
from trenv.lab.server.decisions import EXPORT_HINT
from trenv.lab.server.saved import saved_outputs
from trenv.wire.airlock import MAX_TITLE, REQUESTS_PATH, ExportRequestIn
from trenv.wire.dp import BUDGET_PATH

SETTINGS_KEY = "trenv_api"  # the server's AsyncApi in the tornado settings


class RequestBodyError(ValueError):
    """The panel sent a body the export request cannot be made from."""


def export_request_body(raw: Any) -> dict[str, Any]:
    """The body forwarded to ``POST /airlock/requests``, rebuilt by the wire model so that
    nothing else (a ``project``, say) can ride along: the server token decides the project."""
    try:
        body = ExportRequestIn.model_validate(raw)
    except ValidationError as invalid:
        raise RequestBodyError(_panel_problem(raw, invalid.errors()[0])) from None
    return body.model_dump()


def _panel_problem(raw: Any, error: ErrorDetails) -> str:
    """What the Outputs panel shows for the first thing wrong with its body."""
    loc = error["loc"]
    if not loc:
        return "send a JSON object with title and files"
    if loc[0] == "title":
        return f"give the request a title of 1 to {MAX_TITLE} characters"
    if loc[0] == "submit":
        return "submit is true or false"
    if len(loc) == 1:
        return "choose at least one output file"
    item = raw["files"][loc[1]]
    if len(loc) == 2:
        return "each file needs a path and a justification"
    path = item.get("path")
    if loc[2] == "path":
        return f"{path!r} is not a path inside the workspace"
    return f"justify {path}: why is it needed and why is it safe?"


def server_api(config: TrenvLab) -> AsyncApi:
    """The client the forwarder uses: the server's settings, $TRENV_API_URL, its token."""
    return AsyncApi(config.endpoint(), timeout=config.request_timeout)


class TrenvHandler(APIHandler):
    auth_resource = "contents"  # the panel shows what the contents API could show

    @property
    def trenv(self) -> TrenvLab:
        config: TrenvLab = self.settings["trenv_lab"]
        return config

    @property
    def api(self) -> AsyncApi:
        api: AsyncApi = self.settings[SETTINGS_KEY]
        return api

    def reply(self, status: int, data: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    async def forward(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        if not self.api.connected:
            return self.reply(
                503,
                {
                    "problem": "this notebook server is not connected to the trenv service.",
                    "fix": "Start the server from the trenv hub (it sets TRENV_API_URL).",
                },
            )
        try:
            answer = await self.api.send(method, path, body)
        except ApiError as error:
            return self.reply(502, {"problem": error.problem})
        return self.reply(answer.status, answer.data())


class ConfigHandler(TrenvHandler):
    @web.authenticated
    def get(self) -> None:
        limits = self.trenv.limits()
        policy = self.trenv.resolved_policy()
        self.reply(
            200,
            {
                "project": os.environ.get("TRENV_PROJECT", ""),
                "policy": f"{policy.name} v{policy.version}",
                "copy_limit_chars": limits.copy_limit_chars,
                "max_upload_bytes": limits.max_upload_bytes,
                "max_raw_read_bytes": limits.max_raw_read_bytes,
                "data_roots": list(limits.data_roots),
                "export": EXPORT_HINT,
            },
        )


class OutputsHandler(TrenvHandler):
    @web.authenticated
    def get(self) -> None:
        outputs = saved_outputs(session.workspace())
        self.reply(200, {"outputs": [o.to_json() for o in outputs]})


class RequestsHandler(TrenvHandler):
    @web.authenticated
    async def get(self) -> None:
        await self.forward("GET", REQUESTS_PATH)

    @web.authenticated
    async def post(self) -> None:
        try:
            body = export_request_body(self.get_json_body())
        except (RequestBodyError, web.HTTPError) as error:
            message = error.log_message if isinstance(error, web.HTTPError) else str(error)
            return self.reply(400, {"problem": message})
        await self.forward("POST", REQUESTS_PATH, body)


class RequestHandler(TrenvHandler):
    @web.authenticated
    async def get(self, request_id: str) -> None:
        await self.forward("GET", f"{REQUESTS_PATH}/{int(request_id)}")


class BudgetHandler(TrenvHandler):
    @web.authenticated
    async def get(self) -> None:
        await self.forward("GET", BUDGET_PATH)


def handlers(base_url: str) -> list[tuple[str, type[TrenvHandler]]]:
    def at(path: str) -> str:
        return url_path_join(base_url, "trenv", path)

    return [
        (at("config"), ConfigHandler),
        (at("outputs"), OutputsHandler),
        (at("requests"), RequestsHandler),
        (at(r"requests/(\d+)"), RequestHandler),
        (at("budget"), BudgetHandler),
    ]
