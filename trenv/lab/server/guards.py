"""Enforcement in the notebook server: the download routes and the contents API.

Two mechanisms, both on the server so that no browser setting can undo them:

- a rule put in front of every route of the tornado application refuses the download
  handlers (``/files/``, ``/view/``, ``/nbconvert/``) and any ``?download=...`` before the
  request reaches jupyter_server's own handler;
- the contents API handler is replaced by a subclass that judges what a read would send to
  the browser by its content (trenv.judge.files; notebooks: trenv.lab.server.notebooks),
  counts what it sends with the egress meter, refuses oversized uploads and the day's
  excess, and otherwise behaves exactly as jupyter_server's.

A read is judged twice: before the contents manager reads the file (its first bytes and
size: a Parquet file or a 50 MB file is refused without being read) and on the model the
manager returns, which is exactly what would be sent (so a file swapped between the two is
judged as it was read).
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.services.contents.handlers import ContentsHandler
from tornado import httputil, web
from tornado.ioloop import IOLoop
from tornado.routing import Matcher, Rule

from trenv.judge.files import HEAD_BYTES, FileLimits, image_format
from trenv.lab.server.config import TrenvLab
from trenv.lab.server.decisions import (
    FileFacts,
    Refusal,
    download_refusal,
    payload_bytes,
    raw_read_refusal,
    relative_to_base,
    stopped_refusal,
    upload_refusal,
    wants_content,
)
from trenv.lab.server.listings import ListingTally
from trenv.lab.server.meter import SETTINGS_KEY, EgressMeter
from trenv.lab.server.notebooks import (
    as_written,
    attachment_image_chars,
    new_bytes,
    restore_withheld,
)
from trenv.lab.server.reads import judge_file_read, judge_notebook, model_bytes
from trenv.meter.wire import REFUSED, Kind

LISTINGS_KEY = "trenv_listings"


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
                head = handle.read(HEAD_BYTES)
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
    """jupyter_server's contents API, reads judged by content and metered, uploads capped."""

    _held: dict[str, Any] | None = None  # the GET model, judged before it is sent
    _body: dict[str, Any] | None = None  # the PUT model, with withheld outputs put back

    @property
    def trenv(self) -> TrenvLab:
        config: TrenvLab = self.settings["trenv_lab"]
        return config

    @property
    def meter(self) -> EgressMeter | None:
        meter: EgressMeter | None = self.settings.get(SETTINGS_KEY)
        return meter

    @property
    def listings(self) -> ListingTally:
        tally: ListingTally = self.settings.setdefault(LISTINGS_KEY, ListingTally())
        return tally

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

    def refuse(self, path: str, refusal: Refusal, detail: dict[str, object]) -> None:
        """Answer 403 with the refusal and write the audit event (no data: path, rule, sizes)."""
        self.log.warning("trenv: refused %s of %s: %s", self.request.method, path, refusal.reason)
        meter = self.meter
        if meter is not None:
            meter.event(
                REFUSED,
                {"channel": "contents", "method": self.request.method, "path": path.strip("/"),
                 "reason": refusal.reason, **detail},
            )  # fmt: skip
        write_refusal(self, refusal)

    def count(self, kind: Kind, nbytes: int) -> None:
        meter = self.meter
        if meter is not None and nbytes > 0:
            meter.add("contents", kind, nbytes)

    def stopped(self, kind: Kind) -> Refusal | None:
        """The meter's refusal when this hour's output of ``kind`` is used up."""
        meter = self.meter
        if meter is None or meter.allowed(kind):
            return None
        return stopped_refusal(meter.stopped_message(kind))

    def _finish_model(self, model: dict[str, Any], location: bool = True) -> None:
        if self.request.method == "GET":
            self._held = model  # get() judges it, then sends it
            return
        super()._finish_model(model, location)

    def send_model(self, model: dict[str, Any]) -> int:
        """jupyter_server's _finish_model for a GET; the bytes sent."""
        body = json.dumps(model, default=json_default).encode("utf-8")
        self.set_header("Last-Modified", model["last_modified"])
        self.set_header("Content-Type", "application/json")
        self.finish(body)
        return len(body)

    @web.authenticated
    @authorized
    async def get(self, path: str = "") -> None:
        query = self.query()
        limits = self.trenv.limits()
        try:
            facts: FileFacts | None = file_facts(self.os_path(path))
        except web.HTTPError:
            facts = None  # outside the root: let jupyter_server answer as it does
        if facts is not None:
            refusal = raw_read_refusal(path, facts, query, limits)
            if refusal is not None:
                return self.refuse(path, refusal, {"rule": "before-read", "bytes": facts.size})
            if facts.exists and not facts.is_dir and wants_content(query):
                refusal = self.stopped("image" if image_format(facts.head) else "text")
                if refusal is not None:
                    return self.refuse(path, refusal, {"rule": "meter", "bytes": facts.size})
        self._held = None
        await super().get(path)
        model, self._held = self._held, None
        if model is None:  # jupyter_server answered (an error) itself
            return
        if model.get("type") == "directory":
            self.send_model(model)
            self.count("text", self.listings.new_bytes(path, model.get("content") or []))
            return
        if model.get("content") is None:  # metadata only
            self.send_model(model)
            return
        if model.get("type") == "notebook":
            return await self.send_notebook(path, model, limits.files())
        await self.send_file(path, model, limits.files())

    async def send_file(self, path: str, model: dict[str, Any], files: FileLimits) -> None:
        data = model_bytes(model) or b""
        judged = await IOLoop.current().run_in_executor(
            None, judge_file_read, path, data, files, self.trenv.output_limits()
        )
        if isinstance(judged, Refusal):
            return self.refuse(path, judged, {"rule": "content", "bytes": len(data)})
        kind: Kind = "image" if judged.kind == "image" else "text"
        refusal = self.stopped(kind)
        if refusal is not None:
            return self.refuse(path, refusal, {"rule": "meter", "bytes": len(data)})
        self.count(kind, self.send_model(model))

    async def send_notebook(self, path: str, model: dict[str, Any], files: FileLimits) -> None:
        meter = self.meter
        images = self.stopped("image")  # images past the hour's level become markers
        judged = await IOLoop.current().run_in_executor(
            None,
            judge_notebook,
            path,
            model["content"],
            files,
            self.trenv.output_limits(),
            images.message if images is not None else None,
        )
        if isinstance(judged, Refusal):
            return self.refuse(path, judged, {"rule": "notebook-content"})
        if judged.withheld and meter is not None:
            # One event per read (a notebook can hold thousands of outputs): what, not data.
            meter.event(
                REFUSED,
                {
                    "channel": "contents",
                    "method": "GET",
                    "path": path.strip("/"),
                    "reason": "notebook-output",
                    "rule": ",".join(sorted({w.rule for w in judged.withheld})),
                    "outputs": sum(w.outputs for w in judged.withheld),
                    "cells": len({w.cell for w in judged.withheld}),
                    "chars": sum(w.chars for w in judged.withheld),
                },
            )
        sent = self.send_model({**model, "content": judged.notebook})
        image_chars = judged.image_chars + attachment_image_chars(judged.notebook)
        self.count("image", min(image_chars, sent))
        self.count("text", sent - min(image_chars, sent))

    def get_json_body(self) -> Any:
        if self._body is not None:
            return self._body
        return super().get_json_body()

    async def disk_notebook(self, path: str) -> dict[str, Any] | None:
        """The notebook on disk at ``path`` as the contents manager reads it, if any."""
        try:
            model = await ensure_async(
                self.contents_manager.get(path=path, content=True, type="notebook")
            )
        except Exception:  # missing, not a notebook, unreadable: nothing to put back
            return None
        content = model.get("content")
        return content if isinstance(content, dict) else None

    @web.authenticated
    @authorized
    async def put(self, path: str = "") -> None:
        model = self.get_json_body() or {}
        content = model.get("content") if isinstance(model, dict) else None
        if content is not None:
            existing = 0
            try:
                existing = os.path.getsize(self.os_path(path))
            except (OSError, web.HTTPError):
                existing = 0
            limits = self.trenv.limits()
            refusal = upload_refusal(path, model, existing, limits)
            if refusal is not None:
                return self.refuse(
                    path, refusal, {"rule": "upload-size", "bytes": payload_bytes(model)}
                )
            nbytes = payload_bytes(model)  # a chunk counts its own bytes
            if model.get("type") == "notebook" and isinstance(content, dict):
                # Outputs withheld when the notebook was opened come back as markers: put the
                # real outputs back from the file, and count only what is new in it.
                on_disk = await self.disk_notebook(path)
                restored = restore_withheld(content, on_disk)
                if restored.unresolved:
                    self.log.warning(
                        "trenv: %d withheld-output markers saved as they are in %s (their "
                        "outputs are no longer in the file)", restored.unresolved, path,
                    )  # fmt: skip
                model = {**model, "content": restored.notebook}
                if on_disk is not None:
                    try:
                        nbytes = new_bytes(as_written(restored.notebook), on_disk)
                    except Exception:  # not a valid notebook: count all of it
                        nbytes = payload_bytes(model)
            meter = self.meter
            if meter is not None and nbytes > 0:
                refusal = await meter.upload_refusal(path, nbytes)
                if refusal is not None:
                    return self.refuse(path, refusal, {"rule": "upload-day", "bytes": nbytes})
            self._body = model
        await super().put(path)
