"""The web service's foundation: routing under the prefix, authentication, headers, login."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from trenv.config import Settings
from trenv.errors import Conflict
from trenv.store import upgrade
from trenv.web.app import SECURITY_HEADERS, create_app
from trenv.web.auth import SESSION_COOKIE, StaticIdentity, WebUser, is_server_token
from trenv.web.deps import REVIEW, CurrentUser, require_scope

P = "/services/trenv/"
RITA = WebUser("rita", frozenset({"access:services!service=trenv"}))
CHRIS = WebUser("chris", frozenset({"custom:trenv:review", "access:services!service=trenv"}))


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    identity = StaticIdentity(
        users={"t-rita": RITA, "t-chris": CHRIS}, servers={"rita": "reoffending"},
        codes={"code-1": "t-chris"},
    )  # fmt: skip
    settings = Settings(home=tmp_path)
    upgrade(settings)  # the landing page asks the registry whether the user controls data
    app = create_app(settings, identity)
    extra = APIRouter()

    @extra.get("/probe/review")
    def review_only(user: CurrentUser, _: WebUser = Depends(require_scope(REVIEW))) -> str:
        return user.name

    @extra.get("/probe/conflict")
    def conflict() -> None:
        raise Conflict("already decided.", "Reload the page.")

    app.include_router(extra, prefix=P + "api")
    return TestClient(app, base_url="http://testserver")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


def test_openapi_document_and_docs_page(client: TestClient) -> None:
    spec = client.get(P + "api/openapi.json").json()
    assert spec["info"]["title"] == "trenv"
    assert P + "api/me" in spec["paths"]
    page = client.get(P + "api/docs", headers={"accept": "text/html"})
    assert page.status_code == 200 and "/api/me" in page.text
    assert "<script" not in page.text


@pytest.mark.parametrize("path", ["api/openapi.json", "api/me", "static/trenv.css", "", "nope"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    reply = client.get(P + path, follow_redirects=False)
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value
    assert reply.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in reply.headers["content-security-policy"]


def test_api_needs_a_valid_token(client: TestClient) -> None:
    for headers in ({}, auth("wrong"), {"Authorization": "Basic abc"}):
        reply = client.get(P + "api/me", headers=headers)
        assert reply.status_code == 401
        assert "token" in reply.json()["problem"]
    me = client.get(P + "api/me", headers=auth("t-rita")).json()
    assert me == {"name": "rita", "scopes": ["access:services!service=trenv"],
                  "from_server": False, "server_project": "reoffending"}  # fmt: skip


def test_scopes_and_error_format(client: TestClient) -> None:
    refused = client.get(P + "api/probe/review", headers=auth("t-rita"))
    assert refused.status_code == 403
    assert "custom:trenv:review" in refused.json()["problem"]
    assert client.get(P + "api/probe/review", headers=auth("t-chris")).json() == "chris"
    conflict = client.get(P + "api/probe/conflict")
    assert conflict.status_code == 409
    assert conflict.json() == {"problem": "already decided.", "fix": "Reload the page."}


def test_browser_login_through_the_hub(client: TestClient) -> None:
    html = {"accept": "text/html"}
    first = client.get(P, headers=html, follow_redirects=False)
    assert first.status_code == 302 and first.headers["location"].startswith(P + "oauth_login")
    login = client.get(first.headers["location"], follow_redirects=False)
    assert login.status_code == 302
    target = login.headers["location"]
    assert target.startswith("/hub/api/oauth2/authorize") and "code_challenge=" in target
    state = target.split("state=")[1].split("&")[0]
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and f"Path={P}" in cookie
    # A forged state is refused.
    bad = client.get(P + "oauth_callback?code=code-1&state=forged", headers=html)
    assert bad.status_code == 403 and "state" in bad.text
    done = client.get(P + f"oauth_callback?code=code-1&state={state}", follow_redirects=False)
    assert done.status_code == 302 and done.headers["location"] == P
    assert SESSION_COOKIE in done.headers["set-cookie"]
    assert "t-chris" not in done.headers["set-cookie"]  # the token is encrypted
    home = client.get(P, headers=html)
    assert home.status_code == 200 and "chris" in home.text and ">Queue<" in home.text
    assert ">Admin<" not in home.text  # links only for the scopes one has
    # A cookie-authenticated write from another site is refused.
    cross = client.post(P + "api/me", headers={"origin": "http://evil.example"})
    assert cross.status_code in {403, 405}
    out = client.get(P + "logout", follow_redirects=False)
    assert out.headers["location"] == "/hub/logout"
    assert client.get(P + "api/me").status_code == 401


def test_open_redirect_is_not_possible(client: TestClient) -> None:
    login = client.get(P + "oauth_login?next=https://evil.example/", follow_redirects=False)
    state = login.headers["location"].split("state=")[1].split("&")[0]
    done = client.get(P + f"oauth_callback?code=code-1&state={state}", follow_redirects=False)
    assert done.headers["location"] == P


def test_server_tokens_are_recognised_by_their_scopes() -> None:
    server = frozenset({"users:activity!user=rosa", "access:servers!server=rosa/",
                        "access:services!service=trenv"})  # fmt: skip
    assert is_server_token("rosa", server)
    assert not is_server_token("rosa", server | {"custom:trenv:review"})
    assert not is_server_token("bob", server)
