"""A stand-in for the trenv API's egress report, for tests of notebook servers.

It answers ``POST .../egress/report`` as trenv/web/api/egress.py does (the user's hour per
kind, the day's uploads, levels from a policy, trenv.meter.wire's schema) and records every
report, so a test can see what a meter sent, take the API down (503) or make it slow.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trenv.disclosure.policy import Policy, load_policy
from trenv.meter import levels as lv
from trenv.meter.wire import KINDS, REPORT_PATH, Report, ReportAnswer, UploadAnswer


@dataclass
class FakeEgressApi:
    policy: Policy = field(default_factory=lambda: load_policy("trenv-default"))
    project: str = "proj-a"
    down: bool = False  # answer 503, as a trenv API that cannot reach its database
    delay: float = 0.0  # seconds before answering
    used: Counter[str] = field(default_factory=Counter)  # this hour, per kind
    reports: list[dict[str, Any]] = field(default_factory=list)  # every report, as sent
    refused: int = 0  # reports answered 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def counted(self, kind: str) -> int:
        """Bytes of ``kind`` in reports that were answered 200."""
        with self.lock:
            return self.used[kind]

    def answer(self, raw: bytes, auth: str | None) -> tuple[int, dict[str, Any]]:
        time.sleep(self.delay)
        body = json.loads(raw or b"{}")
        with self.lock:
            self.reports.append({"auth": auth, "body": body})
            if self.down:
                self.refused += 1
                return 503, {"problem": "the trenv API is down (test)", "fix": None}
            report = Report.model_validate(body)
            for count in report.counts:
                self.used[count.kind] += count.bytes
            now = dt.datetime.now(dt.UTC)
            upload = None
            if report.upload is not None:
                allowed = lv.upload_allowed(self.used["upload"], report.upload.bytes, self.policy)
                if allowed:
                    self.used["upload"] += report.upload.bytes
                upload = UploadAnswer(
                    allowed=allowed,
                    bytes=report.upload.bytes,
                    used=self.used["upload"],
                    limit=lv.levels(self.policy, "upload").hard,
                    resets_at=lv.resets_at("upload", now),
                )
            kinds = {k: lv.reading(self.policy, k, self.used[k], now) for k in (*KINDS, "upload")}
            answer = ReportAnswer(project=self.project, kinds=kinds, upload=upload)  # type: ignore[arg-type]
            return 200, answer.model_dump(mode="json")

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve on a free port; yields the API URL (what TRENV_API_URL holds)."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/services/trenv/api"
        finally:
            server.shutdown()
            server.server_close()


def is_report(path: str) -> bool:
    return path.rstrip("/").endswith("/" + REPORT_PATH)


def handler_for(api: FakeEgressApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, data = (
                api.answer(raw, self.headers["Authorization"])
                if is_report(self.path)
                else (404, {"problem": "not here"})
            )
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    return Handler
