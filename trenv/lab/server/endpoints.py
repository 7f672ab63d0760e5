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
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from trenv.lab import session
from trenv.lab.server.config import TrenvLab
from trenv.lab.server.decisions import EXPORT_HINT
from trenv.lab.server.saved import saved_outputs

MAX_TITLE = 300
MAX_JUSTIFICATION = 5000


class RequestBodyError(ValueError):
    """The panel sent a body the export request cannot be made from."""


def export_request_body(raw: Any) -> dict[str, Any]:
    """The body forwarded to ``POST /airlock/requests``, rebuilt field by field so that
    nothing else (a ``project``, say) can ride along: the server token decides the project."""
    if not isinstance(raw, dict):
        raise RequestBodyError("send a JSON object with title and files")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        raise RequestBodyError(f"give the request a title of 1 to {MAX_TITLE} characters")
    files = raw.get("files")
    if not isinstance(files, list) or not files:
        raise RequestBodyError("choose at least one output file")
    clean: list[dict[str, str]] = []
    for item in files:
        if not isinstance(item, dict):
            raise RequestBodyError("each file needs a path and a justification")
        path, why = item.get("path"), item.get("justification")
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise RequestBodyError(f"{path!r} is not a path inside the workspace")
        if not isinstance(why, str) or not why.strip() or len(why) > MAX_JUSTIFICATION:
            raise RequestBodyError(f"justify {path}: why is it needed and why is it safe?")
        clean.append({"path": path, "justification": why.strip()})
    submit = raw.get("submit", True)
    if not isinstance(submit, bool):
        raise RequestBodyError("submit is true or false")
    return {"title": title.strip(), "files": clean, "submit": submit}


class TrenvHandler(APIHandler):
    auth_resource = "contents"  # the panel shows what the contents API could show

    @property
    def trenv(self) -> TrenvLab:
        config: TrenvLab = self.settings["trenv_lab"]
        return config

    def reply(self, status: int, data: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    async def forward(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        base = self.trenv.resolved_api_url()
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        if not base or not token:
            return self.reply(
                503,
                {
                    "problem": "this notebook server is not connected to the trenv service.",
                    "fix": "Start the server from the trenv hub (it sets TRENV_API_URL).",
                },
            )
        request = HTTPRequest(
            f"{base}/{path}",
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            body=json.dumps(body) if body is not None else None,
            request_timeout=self.trenv.request_timeout,
            follow_redirects=False,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as error:
            return self.reply(502, {"problem": f"the trenv service did not answer: {error}"})
        try:
            data = json.loads(response.body or b"null")
        except ValueError:
            data = {"problem": (response.body or b"").decode("utf-8", "replace")[:500]}
        return self.reply(response.code, data)


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
        await self.forward("GET", "airlock/requests")

    @web.authenticated
    async def post(self) -> None:
        try:
            body = export_request_body(self.get_json_body())
        except (RequestBodyError, web.HTTPError) as error:
            message = error.log_message if isinstance(error, web.HTTPError) else str(error)
            return self.reply(400, {"problem": message})
        await self.forward("POST", "airlock/requests", body)


class RequestHandler(TrenvHandler):
    @web.authenticated
    async def get(self, request_id: str) -> None:
        await self.forward("GET", f"airlock/requests/{int(request_id)}")


class BudgetHandler(TrenvHandler):
    @web.authenticated
    async def get(self) -> None:
        await self.forward("GET", "dp/budget")


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
