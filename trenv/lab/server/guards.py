"""Enforcement in the notebook server: the download routes and the contents API.

Two mechanisms, both on the server so that no browser setting can undo them:

- a rule put in front of every route of the tornado application refuses the download
  handlers (``/files/``, ``/view/``, ``/nbconvert/``) and any ``?download=...`` before the
  request reaches jupyter_server's own handler;
- the contents API handler is replaced by a subclass that refuses raw reads of data and
  oversized uploads, and otherwise behaves exactly as jupyter_server's.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.services.contents.handlers import ContentsHandler
from tornado import httputil, web
from tornado.routing import Matcher, Rule

from trenv.lab.server.config import TrenvLab
from trenv.lab.server.decisions import (
    MAGIC_BYTES,
    FileFacts,
    Refusal,
    download_refusal,
    raw_read_refusal,
    relative_to_base,
    upload_refusal,
)


def write_refusal(handler: web.RequestHandler, refusal: Refusal) -> None:
    handler.clear()
    handler.set_status(403)
    handler.set_header("Content-Type", "application/json; charset=UTF-8")
    handler.set_header("Cache-Control", "no-store")
    handler.finish(json.dumps(refusal.body()))


class DownloadMatcher(Matcher):
    """Matches the requests that :func:`download_refusal` refuses."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        relative = relative_to_base(request.path, self.base_url)
        if relative is None:
            return None
        query = httputil.parse_qs_bytes(request.query, keep_blank_values=True)
        decoded = {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in query.items()}
        refusal = download_refusal(relative, decoded)
        if refusal is None:
            return None
        return {"target_kwargs": {"refusal": refusal}}


class RefusedHandler(web.RequestHandler):
    """Answers every method with the refusal; nothing else runs."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, refusal: Refusal) -> None:
        self.refusal = refusal

    def check_xsrf_cookie(self) -> None:
        # Refusing needs no XSRF protection, and the researcher should read the reason, not
        # an XSRF error, when a download button is pressed anyway.
        return None

    def prepare(self) -> None:
        write_refusal(self, self.refusal)


def refuse_downloads(web_app: web.Application, base_url: str) -> None:
    """Put the download rule in front of every other route (extension routes included)."""
    rule = Rule(DownloadMatcher(base_url), RefusedHandler)
    web_app.default_router.rules.insert(0, rule)


def file_facts(os_path: str) -> FileFacts:
    """What ``os_path`` is once symlinks are followed (never blocks on a FIFO or device)."""
    resolved = os.path.realpath(os_path)
    try:
        info = os.stat(resolved)
    except OSError:
        return FileFacts(resolved=resolved, exists=False, is_dir=False, size=0)
    head = b""
    if stat.S_ISREG(info.st_mode):
        try:
            with open(resolved, "rb") as handle:
                head = handle.read(MAGIC_BYTES)
        except OSError:
            head = b""
    return FileFacts(
        resolved=resolved,
        exists=True,
        is_dir=stat.S_ISDIR(info.st_mode),
        size=info.st_size,
        head=head,
    )


class GuardedContentsHandler(ContentsHandler):
    """jupyter_server's contents API, with the raw-read and upload limits in front."""

    @property
    def trenv(self) -> TrenvLab:
        config: TrenvLab = self.settings["trenv_lab"]
        return config

    def os_path(self, path: str) -> str:
        manager = self.contents_manager
        to_os = getattr(manager, "_get_os_path", None)
        if callable(to_os):  # the file managers' own mapping, with their checks
            return str(to_os(path.strip("/")))
        return os.path.join(os.path.abspath(manager.root_dir), path.strip("/"))

    def query(self) -> dict[str, list[str]]:
        return {
            k: [v.decode("utf-8", "replace") for v in vs]
            for k, vs in self.request.arguments.items()
        }

    @web.authenticated
    @authorized
    async def get(self, path: str = "") -> None:
        try:
            facts = file_facts(self.os_path(path))
        except web.HTTPError:
            facts = None  # outside the root: let jupyter_server answer as it does
        if facts is not None:
            refusal = raw_read_refusal(path, facts, self.query(), self.trenv.limits())
            if refusal is not None:
                self.log.warning("trenv: refused raw read of %s: %s", path, refusal.reason)
                return write_refusal(self, refusal)
        await super().get(path)

    @web.authenticated
    @authorized
    async def put(self, path: str = "") -> None:
        model = self.get_json_body() or {}
        if model.get("content") is not None:
            existing = 0
            try:
                existing = os.path.getsize(self.os_path(path))
            except (OSError, web.HTTPError):
                existing = 0
            refusal = upload_refusal(path, model, existing, self.trenv.limits())
            if refusal is not None:
                self.log.warning("trenv: refused upload to %s: %s", path, refusal.reason)
                return write_refusal(self, refusal)
        await super().put(path)
