"""A real jupyter_server with trenv's extension, and a stand-in for the trenv web API.

The stand-in records what the extension sends it (forwarded requests with their token, the
egress meter's reports: counts, audit events, uploads) and answers the meter as the real
API would (trenv.meter.wire), with a day's upload cap and a switch that says the hour's
text is used up, so tests can see both sides of every decision.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.support.net import free_port
from trenv.meter.wire import KindState, Report, ReportAnswer, UploadAnswer

BROWSER_TOKEN = "browser-token"
SERVER_TOKEN = "server-token-of-the-notebook-server"
BASE = "/user/rosa/"
MiB = 1024 * 1024


@dataclass
class FakeApi:
    url: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    upload_limit: int = 50 * MiB  # the policy's airlock.max_upload_mb_per_day
    uploaded: int = 0
    text_stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, report: Report) -> ReportAnswer:
        now = dt.datetime.now(dt.UTC)
        hour = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
        with self.lock:
            self.reports.append(report)
            upload = None
            if report.upload is not None:
                allowed = self.uploaded + report.upload.bytes <= self.upload_limit
                self.uploaded += report.upload.bytes if allowed else 0
                upload = UploadAnswer(
                    allowed=allowed, bytes=report.upload.bytes, used=self.uploaded,
                    limit=self.upload_limit, resets_at=day,
                )  # fmt: skip
            hard = 2048 * 1024
            used = hard if self.text_stopped else 0
            kinds = {
                "text": KindState(used=used, warn=hard // 4, hard=hard,
                                  state="stopped" if self.text_stopped else "ok", resets_at=hour),
                "image": KindState(used=0, warn=1, hard=64 * MiB, state="ok", resets_at=hour),
                "upload": KindState(used=self.uploaded, warn=self.upload_limit,
                                    hard=self.upload_limit, state="ok", resets_at=day),
            }  # fmt: skip
        return ReportAnswer(project="proj-a", kinds=kinds, upload=upload)

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            found = [e.detail for r in self.reports for e in r.events]
        return [d for d in found if reason is None or d.get("reason") == reason]

    def counted(self, kind: str) -> int:
        with self.lock:
            return sum(
                c.bytes for r in self.reports for c in r.counts
                if c.channel == "contents" and c.kind == kind
            )  # fmt: skip

    def uploads(self) -> list[int]:
        with self.lock:
            return [r.upload.bytes for r in self.reports if r.upload is not None]

    def wait_for(self, check: Any, timeout: float = 15.0) -> Any:
        """Poll ``check()`` until it is truthy: the meter reports every ~2 s."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def _fake_api() -> tuple[ThreadingHTTPServer, FakeApi]:
    api = FakeApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, data: Any) -> None:
            body = (data if isinstance(data, str) else json.dumps(data)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            api.seen.append(
                {"method": "GET", "path": self.path, "auth": self.headers["Authorization"]}
            )
            if self.path.endswith("/dp/budget"):
                self._answer(
                    200,
                    {
                        "project": "proj-a",
                        "budgets": [
                            {
                                "dataset": "d",
                                "rho_total": 1.0,
                                "rho_spent": 0.25,
                                "rho_remaining": 0.75,
                            }
                        ],
                    },
                )
            else:
                self._answer(200, [])

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            if self.path.endswith("/egress/report"):
                if self.headers["Authorization"] != f"token {SERVER_TOKEN}":
                    return self._answer(403, {"detail": "not a server token"})
                answer = api.answer(Report.model_validate_json(raw))
                return self._answer(200, answer.model_dump_json())
            body = json.loads(raw)
            api.seen.append(
                {
                    "method": "POST",
                    "path": self.path,
                    "auth": self.headers["Authorization"],
                    "body": body,
                }
            )
            self._answer(201, {"id": 7, "title": body["title"], "state": "submitted"})

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/services/trenv/api"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, api


def auth() -> dict[str, str]:
    return {"Authorization": f"token {BROWSER_TOKEN}"}


@dataclass
class Lab:
    url: str
    work: Path
    data: Path
    api: FakeApi

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(f"{self.url}/{path}", headers=auth(), timeout=30, **kwargs)

    def put(self, path: str, model: dict[str, Any]) -> requests.Response:
        return requests.put(f"{self.url}/{path}", headers=auth(), json=model, timeout=60)


@contextmanager
def running_lab(root: Path, policy: str = "sacro") -> Iterator[Lab]:
    """A notebook server on ``root/work`` (data under ``root/data``) with the extension."""
    work, data, home = root / "work", root / "data", root / "home"
    for d in (work, data, home):
        d.mkdir(exist_ok=True)
    server, api = _fake_api()
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "TRENV_DATA": str(data),
        "TRENV_WORKSPACE": str(work),
        "TRENV_POLICY": policy,
        "TRENV_PROJECT": "proj-a",
        "TRENV_API_URL": api.url,
        "JUPYTERHUB_API_TOKEN": SERVER_TOKEN,
    }
    cmd = [
        sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
        f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.base_url={BASE}",
        f"--ServerApp.root_dir={work}", f"--IdentityProvider.token={BROWSER_TOKEN}",
        "--ServerApp.jpserver_extensions={'trenv.lab.server': True}",
    ]  # fmt: skip
    log = (root / "server.log").open("w")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}{BASE.rstrip('/')}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/status", headers=auth(), timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.3)
    else:
        process.kill()
        server.shutdown()
        raise RuntimeError((root / "server.log").read_text())
    try:
        yield Lab(url, work, data, api)
    finally:
        process.terminate()
        process.wait(timeout=30)
        server.shutdown()
        log.close()
