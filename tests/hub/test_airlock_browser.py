"""The airlock end to end, as its users meet it: a real hub, a real container, Chromium.

rosa saves a checked table in her notebook container and asks for its release through the
trenv API with her server's token; chris and cleo (independent output checkers) log in
through the hub with passphrase and one-time code and approve it in the review pages;
rosa releases and downloads the zip in her browser, and the zip's record verifies against
its files. From inside the container the same release can be neither made nor downloaded.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from playwright.sync_api import Browser, Page

from tests.hub.conftest import PASSWORD, Hub, run
from tests.support.browser import hub_login, screenshot
from trenv.airlock.bundle import RECORD_NAME, verify_bundle

pytestmark = pytest.mark.timeout(600)

SAVE_AND_REQUEST = """
import json, os, requests
import pandas as pd
import trenv.lab as tre

rows = []
for i, region in enumerate(["noord", "zuid", "oost"] * 60):
    rows.append({"person": f"p{i}", "region": region,
                 "outcome": "reoffended" if i % 2 else "not reoffended"})
df = pd.DataFrame(rows)
out = tre.crosstab(df.region, df.outcome, contributor=df.person)
tre.save(out, "reoffending_by_region")
api = os.environ["TRENV_API_URL"]
auth = {"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}
reply = requests.post(api + "/airlock/requests", headers=auth, timeout=60, json={
    "title": "Reoffending by region",
    "files": [{"path": "outputs/reoffending_by_region.csv",
               "justification": "Table 2 of the report; every cell has 10+ people."}],
    "submit": True,
})
print(json.dumps({"policy": os.environ.get("TRENV_POLICY"), "status": out.status,
                  "code": reply.status_code, "body": reply.json()}))
"""

FROM_INSIDE = """
import json, os, requests
api = os.environ["TRENV_API_URL"]
auth = {"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}
rid = RID
release = requests.post(f"{api}/airlock/requests/{rid}/release", headers=auth, timeout=30)
download = requests.get(f"{api}/airlock/requests/{rid}/download", headers=auth, timeout=30)
print(json.dumps([release.status_code, download.status_code, download.json()]))
"""


def _last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def rosa_server(hub: Hub) -> Iterator[docker.models.containers.Container]:
    reply = hub.spawn("rosa", "proj-a")
    assert reply.status_code in (201, 202), reply.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        model = hub.api("GET", "/users/rosa").json()
        if (model.get("servers") or {}).get("", {}).get("ready"):
            break
        time.sleep(0.5)
    else:
        pytest.fail("rosa's server did not become ready")
    yield hub.container("rosa")
    hub.stop("rosa")


def _login(browser: Browser, hub: Hub, user: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    hub_login(page, hub.url, user, PASSWORD, hub.totp[user])
    return page


def _approve_every_file(page: Page, hub: Hub, request_id: int, checker: str) -> None:
    page.goto(f"{hub.url}/services/trenv/queue")
    assert f"/requests/{request_id}" in page.content(), f"{checker}'s queue misses the request"
    if checker == "chris":
        screenshot(page, "checker-queue")
    page.click(f"a[href$='/requests/{request_id}']")
    page.wait_for_load_state("networkidle")
    if checker == "chris":
        screenshot(page, "checker-request")
    forms = page.locator("form.vote")
    for i in range(forms.count()):
        form = page.locator("form.vote").nth(i)
        form.locator("input[name=decision][value=approve]").check()
        form.locator("textarea[name=comment]").fill(f"{checker}: all cells have 10+ people")
        form.locator("button[type=submit]").click()
        page.wait_for_load_state("networkidle")
    if checker == "cleo":
        screenshot(page, "checker-decided")


def test_request_from_the_container_reviewed_in_the_browser_and_released(
    hub: Hub,
    rosa_server: docker.models.containers.Container,
    browser: Browser,
) -> None:
    # Run as a file (like a script in the workspace) so the record names the calling line.
    runner = f"open('/tmp/analysis.py', 'w').write({SAVE_AND_REQUEST!r})\n"
    runner += "import runpy; runpy.run_path('/tmp/analysis.py')"
    created = _last_json(run(rosa_server, runner))
    assert created["policy"] == "sacro"  # the container checks under the project's profile
    assert created["status"] == "pass"
    assert created["code"] == 201, created["body"]
    request = created["body"]
    assert request["state"] == "submitted"
    request_id = request["id"]
    (frozen,) = request["file_list"]
    assert frozen["check"]["status"] == "pass", frozen["check"]

    # The workspace changes after submission: the release must hold what was submitted.
    run(rosa_server, "open('/home/jovyan/work/outputs/reoffending_by_region.csv', 'a')"
                     ".write('smuggled,1,1\\n')")  # fmt: skip

    for checker in ("chris", "cleo"):
        page = _login(browser, hub, checker)
        _approve_every_file(page, hub, request_id, checker)
        page.context.close()

    # Nothing can be released into, or downloaded from, the container.
    release_code, download_code, refusal = _last_json(
        run(rosa_server, FROM_INSIDE.replace("RID", str(request_id)))
    )
    assert release_code == 403 and download_code == 403, refusal
    assert "container" in refusal["problem"]

    page = _login(browser, hub, "rosa")
    page.goto(f"{hub.url}/services/trenv/requests")
    screenshot(page, "researcher-requests")
    page.goto(f"{hub.url}/services/trenv/requests/{request_id}")
    assert "approved" in page.content()
    screenshot(page, "researcher-approved")
    page.click("form[action$='/release'] button")
    page.wait_for_load_state("networkidle")
    screenshot(page, "researcher-released")
    with page.expect_download() as download_info:
        page.click("a[href$='/download']")
    data = Path(download_info.value.path()).read_bytes()
    page.context.close()

    assert verify_bundle(data) == []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        record = json.loads(zf.read(RECORD_NAME))
        released = zf.read("files/outputs/reoffending_by_region.csv")
    assert b"smuggled" not in released
    (entry,) = record["files"]
    assert entry["released"] and entry["sha256"] == frozen["sha256"]
    assert entry["output_record"]["policy"] == "sacro" and "crosstab" in entry["code"]
    assert {v["checker"] for v in record["votes"]} == {"chris", "cleo"}
    assert record["history"][-1]["to"] == "released"
    assert record["provenance"]["image"]["digest"].startswith("sha256:")
