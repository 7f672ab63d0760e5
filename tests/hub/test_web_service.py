"""The trenv web service comes up with the real hub and answers a spawned container.

The notebook's own token (``JUPYTERHUB_API_TOKEN``) reaches the DP API at ``TRENV_API_URL``
through the firewall; a call without a token is refused.
"""

from __future__ import annotations

import json
import time

import docker
import pytest
import requests

from tests.hub.conftest import Hub, run
from trenv.privacy import ledger
from trenv.store import dispose_engines, transaction


def _wait_for_service(hub: Hub) -> None:
    url = f"{hub.url}/services/trenv/api/openapi.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"the trenv service did not answer at {url}")


@pytest.fixture(scope="module")
def rosa(hub: Hub) -> docker.models.containers.Container:
    with transaction(hub.settings) as session:
        ledger.set_budget(session, actor="adam", project="proj-a", dataset="convictions",
                          rho_total=0.5)  # fmt: skip
    dispose_engines()
    _wait_for_service(hub)
    reply = hub.spawn("rosa", "proj-a")
    assert reply.status_code in (201, 202), reply.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        model = hub.api("GET", "/users/rosa").json()
        if (model.get("servers") or {}).get("", {}).get("ready"):
            return hub.container("rosa")
        time.sleep(0.5)
    pytest.fail("rosa's server did not become ready")


SCRIPT = """
import json, os, requests
api = os.environ["TRENV_API_URL"]
token = os.environ["JUPYTERHUB_API_TOKEN"]
out = {"api": api}
out["budget"] = requests.get(api + "/dp/budget", timeout=30,
                             headers={"Authorization": "token " + token}).json()
out["me"] = requests.get(api + "/me", timeout=30,
                         headers={"Authorization": "token " + token}).json()
out["anonymous"] = requests.get(api + "/dp/budget", timeout=30).status_code
import trenv.lab as tre
out["tre_budget"] = tre.dp.budget().remaining("convictions")
try:
    tre.dp.count("convictions", rho=0.1)
except tre.dp.DPError as error:
    out["count_refusal"] = [error.status, error.problem]
print(json.dumps(out))
"""


def test_container_calls_the_dp_api_with_its_server_token(
    hub: Hub, rosa: docker.models.containers.Container
) -> None:
    output = run(rosa, SCRIPT)
    out = json.loads(output.strip().splitlines()[-1])
    assert out["api"].endswith("/services/trenv/api")
    assert out["budget"] == {"project": "proj-a", "budgets": [{
        "project": "proj-a", "dataset": "convictions", "rho_total": 0.5, "rho_spent": 0.0,
        "rho_remaining": 0.5}]}  # fmt: skip
    assert out["me"]["name"] == "rosa" and out["me"]["from_server"] is True, out["me"]
    assert out["me"]["server_project"] == "proj-a"
    assert not [s for s in out["me"]["scopes"] if s.startswith("custom:")]
    assert out["anonymous"] == 401
    assert out["tre_budget"] == 0.5
    # proj-a has no grant (nothing is published in this fixture): refused, nothing charged.
    assert out["count_refusal"][0] == 403 and "no effective grant" in out["count_refusal"][1]


def test_another_users_token_gets_only_its_own_project(
    hub: Hub, rosa: docker.models.containers.Container
) -> None:
    base = f"{hub.url}/services/trenv/api"
    hub.api("POST", "/users/bob")  # 201 the first time, 409 afterwards
    bob = {"Authorization": f"token {hub.user_token('bob')}"}
    refused = requests.get(f"{base}/dp/budget", headers=bob, timeout=30)
    assert refused.status_code == 403 and "no running notebook server" in refused.json()["problem"]
    rosa_token = {"Authorization": f"token {hub.user_token('rosa')}"}
    mine = requests.get(f"{base}/dp/budget", headers=rosa_token, timeout=30)
    assert mine.status_code == 200 and mine.json()["project"] == "proj-a"
    assert requests.get(f"{base}/dp/budget", timeout=30).status_code == 401
    # Security headers also through the proxy.
    assert mine.headers["x-frame-options"] == "DENY"


def test_browser_is_sent_to_the_hub_to_log_in(hub: Hub) -> None:
    page = requests.get(f"{hub.url}/services/trenv/", headers={"accept": "text/html"},
                        timeout=30, allow_redirects=False)  # fmt: skip
    assert page.status_code == 302 and "/services/trenv/oauth_login" in page.headers["location"]
    login = requests.get(f"{hub.url}{page.headers['location']}", timeout=30,
                         allow_redirects=False)  # fmt: skip
    assert login.status_code == 302
    assert "/hub/api/oauth2/authorize" in login.headers["location"]
    assert "client_id=service-trenv" in login.headers["location"]
