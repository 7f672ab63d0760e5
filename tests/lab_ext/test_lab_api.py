"""trenv.lab.api, the one client of the trenv API in the container, against a real HTTP server
on 127.0.0.1: the server's token on every call, replies and refusals read the same way by
the blocking client (tre.dp, tre.request_export) and the event-loop one (the Outputs panel's
forwarder, the egress meter), no reply within the timeout reported as status 0, and the
bodies tre.dp and tre.request_export build with the wire models."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import trenv.lab as tre
from tests.support.net import free_port
from trenv.lab import api as lab_api
from trenv.lab.api import NOT_CONFIGURED, UNEXPECTED, Api, ApiError, AsyncApi, Endpoint
from trenv.wire.airlock import MAX_TITLE

TOKEN = "server-token-of-the-notebook-server"
PREFIX = "/services/trenv/api"
REFUSAL = {"problem": "only 0.4 of the 1.0 is left.", "fix": "Ask for rho 0.4 or less."}
DP_RESULT = {
    "dp": True, "spend_id": 3, "project": "proj-a", "dataset": "d", "dataset_version": "v1",
    "statistic": "count", "plan_hash": "0" * 64, "rho": 0.1, "epsilon": 1.2, "delta": 1e-7,
    "release": {"statistic": "count", "value": 41.0, "table": None, "accuracy": {"count": 3.0}},
    "budget": {"rho_total": 1.0, "rho_spent": 0.1, "rho_remaining": 0.9},
}  # fmt: skip


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    location: str | None = None


def answer(status: int, data: Any, **kw: Any) -> Answer:
    return Answer(status, json.dumps(data).encode(), **kw)


ANSWERS = {
    "ok": answer(200, {"ok": True}),
    "created": answer(201, {"id": 7, "state": "submitted"}),
    "refused": answer(409, REFUSAL),
    "not-json": Answer(502, b"<html>bad gateway</html>" * 50, "text/html"),
    "empty": Answer(503),
    "list": answer(200, [1, 2]),
    "refused-list": answer(400, ["wrong"]),
    "slow": answer(200, {"ok": True}, delay=3.0),
    "moved": Answer(302, location=f"{PREFIX}/ok"),
    "dp/query": answer(200, DP_RESULT),
    "dp/budget": answer(200, {"project": "proj-a", "budgets": [{"dataset": "d",
                        "rho_total": 1.0, "rho_spent": 0.1, "rho_remaining": 0.9}]}),
    "airlock/requests": answer(201, {"id": 7, "title": "T", "project": "proj-a",
                               "state": "submitted", "file_list": []}),
}  # fmt: skip


@dataclass
class FakeApi:
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeApi]:
    api = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api.seen.append({
                "method": self.command, "path": self.path,
                "auth": self.headers["Authorization"],
                "content_type": self.headers["Content-Type"],
                "body": json.loads(raw) if raw else None,
            })  # fmt: skip
            reply = ANSWERS[self.path.removeprefix(PREFIX + "/")]
            time.sleep(reply.delay)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.location:
                self.send_header("Location", reply.location)
            try:
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a client that timed out has gone

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def session(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """A notebook session as the spawner starts it; a proxy in the environment is ignored."""
    monkeypatch.setenv("TRENV_API_URL", fake.url + "/")  # a trailing slash is dropped
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    unreachable = f"http://127.0.0.1:{free_port()}"
    for proxy in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(proxy, unreachable)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    fake.seen.clear()
    return fake


def blocking(timeout: float = 10.0) -> Api:
    return Api.for_session(timeout=timeout, error=ApiError, caller="tre.test")


def on_the_loop(fake: FakeApi, timeout: float = 10.0) -> AsyncApi:
    return AsyncApi(Endpoint.of(fake.url, TOKEN), timeout=timeout)


def test_calls_carry_the_servers_token_and_a_json_body(session: FakeApi) -> None:
    assert blocking().call("POST", "ok", {"title": "ünïcode", "n": 1}) == {"ok": True}
    assert blocking().call("GET", "created") == {"id": 7, "state": "submitted"}
    posted, got = session.seen
    assert posted == {"method": "POST", "path": f"{PREFIX}/ok", "auth": f"token {TOKEN}",
                      "content_type": "application/json",
                      "body": {"title": "ünïcode", "n": 1}}  # fmt: skip
    assert got["auth"] == f"token {TOKEN}" and got["body"] is None
    assert got["content_type"] is None  # no body, no content type

    async def scenario() -> None:
        reply = await on_the_loop(session).send("POST", "ok", {"a": [1, 2]})
        assert (reply.status, reply.data()) == (200, {"ok": True})

    asyncio.run(scenario())
    assert session.seen[-1]["auth"] == f"token {TOKEN}"
    assert session.seen[-1]["body"] == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("path", "status", "problem", "fix"),
    [
        ("refused", 409, REFUSAL["problem"], REFUSAL["fix"]),
        ("not-json", 502, ("<html>bad gateway</html>" * 50)[:500], None),
        ("empty", 503, "Service Unavailable", None),
        ("refused-list", 400, "['wrong']", None),
        ("list", 200, UNEXPECTED, None),
        ("moved", 302, "Found", None),  # redirects are not followed
    ],
)
def test_refusals_read_as_problem_and_fix(
    session: FakeApi, path: str, status: int, problem: str, fix: str | None
) -> None:
    with pytest.raises(ApiError) as refused:
        blocking().call("GET", path)
    error = refused.value
    assert (error.status, error.problem, error.fix) == (status, problem, fix)
    assert str(error) == (f"{problem} {fix}" if fix else problem)
    assert [s["path"] for s in session.seen] == [f"{PREFIX}/{path}"]


def test_the_event_loop_client_hands_replies_on_as_they_are(session: FakeApi) -> None:
    async def scenario() -> None:
        client = on_the_loop(session)
        refused = await client.send("GET", "refused")
        assert (refused.status, refused.data()) == (409, REFUSAL)
        text = await client.send("GET", "not-json")
        assert text.status == 502 and text.data() == {"problem": text.content.decode()[:500]}
        moved = await client.send("GET", "moved")
        assert moved.status == 302

    asyncio.run(scenario())


def test_no_reply_within_the_timeout_is_status_0(session: FakeApi) -> None:
    started = time.monotonic()
    with pytest.raises(ApiError) as timed_out:
        blocking(timeout=0.5).call("GET", "slow")
    assert time.monotonic() - started < 2.5
    assert timed_out.value.status == 0
    assert timed_out.value.problem.startswith("the trenv service did not answer: ")

    async def scenario() -> None:
        client = on_the_loop(session, timeout=10.0)
        with pytest.raises(ApiError) as slow:
            await client.send("GET", "slow", timeout=0.5)  # a call's own timeout wins
        assert slow.value.status == 0 and "did not answer" in slow.value.problem
        assert (await client.send("GET", "ok")).status == 200  # the client still works

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


def test_an_unreachable_api_is_status_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRENV_API_URL", f"http://127.0.0.1:{free_port()}{PREFIX}")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    with pytest.raises(ApiError) as refused:
        blocking().call("GET", "ok")
    assert refused.value.status == 0 and "did not answer" in refused.value.problem


@pytest.mark.parametrize("missing", ["TRENV_API_URL", "JUPYTERHUB_API_TOKEN"])
def test_a_session_without_the_trenv_api_says_so(
    session: FakeApi, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(ApiError) as refused:
        blocking()
    assert (refused.value.status, refused.value.problem) == (0, NOT_CONFIGURED)
    assert refused.value.fix == "tre.test works inside a trenv notebook server (TRENV_API_URL)."
    with pytest.raises(tre.dp.DPError, match="not configured") as dp_refused:
        tre.dp.budget()
    assert "tre.dp works inside" in str(dp_refused.value.fix)
    assert not AsyncApi(Endpoint.from_environment(), timeout=1).connected
    assert session.seen == []


def test_dp_queries_are_built_and_read_with_the_wire_models(session: FakeApi) -> None:
    out = tre.dp.count("d", by="g", rho=0.1)
    assert out.result == DP_RESULT and out.value == 41.0
    assert session.seen[-1]["body"] == {
        "dataset": "d", "statistic": "count", "rho": 0.1, "group_by": ["g"],
        "max_contributions": 1,
    }  # fmt: skip
    tre.dp.quantile("d", "days", 0.5, (1, 3650), rho=0.2)
    assert session.seen[-1]["body"] == {
        "dataset": "d", "statistic": "quantile", "column": "days", "bounds": [1.0, 3650.0],
        "group_by": [], "rho": 0.2, "alpha": 0.5, "max_contributions": 1,
    }  # fmt: skip
    assert tre.dp.budget().remaining("d") == pytest.approx(0.9)
    assert session.seen[-1] == {"method": "GET", "path": f"{PREFIX}/dp/budget",
                                "auth": f"token {TOKEN}", "content_type": None,
                                "body": None}  # fmt: skip


@pytest.mark.parametrize("rho", ["0.01", True, float("nan")])
def test_a_query_the_api_would_refuse_is_refused_in_its_words_and_not_sent(
    session: FakeApi, rho: object
) -> None:
    with pytest.raises(tre.dp.DPError, match=r"^rho: ") as refused:
        tre.dp.count("d", rho=rho)  # type: ignore[arg-type]
    assert refused.value.status == 400
    assert refused.value.fix == "See the API description at api/docs."
    assert session.seen == []


def test_export_requests_are_built_with_the_wire_model(session: FakeApi) -> None:
    request = tre.request_export("T", {"outputs/t.csv": "Table 1"}, submit=False)
    assert request.id == 7
    assert session.seen[-1]["path"] == f"{PREFIX}/airlock/requests"
    assert session.seen[-1]["body"] == {
        "title": "T", "files": [{"path": "outputs/t.csv", "justification": "Table 1"}],
        "submit": False,
    }  # fmt: skip
    session.seen.clear()
    with pytest.raises(tre.ExportError) as refused:
        tre.request_export("x" * (MAX_TITLE + 1), {"outputs/t.csv": "Table 1"})
    assert refused.value.status == 400
    assert refused.value.problem == f"title: String should have at most {MAX_TITLE} characters"
    assert session.seen == []


def test_blocking_calls_can_be_routed_in_process(
    session: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam the web tests use to run tre.dp against the app in the test process."""
    import httpx

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"path": request.url.path})

    monkeypatch.setattr(lab_api, "transport", httpx.MockTransport(app))
    assert blocking().call("GET", "anything") == {"path": f"{PREFIX}/anything"}
    assert session.seen == []
