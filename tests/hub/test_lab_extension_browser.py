"""JupyterLab's lock-down and the Outputs panel in a real container behind the real hub.

Through the hub's proxy with rosa's browser session: every download route and raw read of data
answers 403 with the way out (the airlock), a notebook still saves. In Chromium, logged in
through the hub: the Outputs panel lists an output saved with ``tre.save``, submitting from
the panel creates an airlock request, the download menu items are gone, and a long copy out
of an output cell is refused while a short one goes through.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import docker
import pytest
from playwright.sync_api import Browser, Page

from tests.hub.conftest import PASSWORD, Hub, run
from tests.support.browser import hub_login, screenshot
from tests.support.lab_session import LabSession
from tests.support.published import hand_published_view

pytestmark = pytest.mark.timeout(600)

WORK = "/home/jovyan/work"
LONG = "4711;" * 400  # 2000 characters: well over the policy's copy limit (500)
SHORT = "short output 42"

PREPARE = f"""
import json, os
import pandas as pd
import trenv.lab as tre

os.chdir({WORK!r})
rows = [{{"person": f"p{{i}}", "region": r, "outcome": "yes" if i % 2 else "no"}}
        for i, r in enumerate(["noord", "zuid", "oost"] * 60)]
df = pd.DataFrame(rows)
out = tre.crosstab(df.region, df.outcome, contributor=df.person)
tre.save(out, "reoffending_by_region")
os.symlink("/data/people.csv", "people-link.txt")
with open("big.csv", "w") as f:
    f.write("a,b\\n" + "1,2\\n" * 400_000)
with open("notes.md", "w") as f:
    f.write("# notes\\n")

import nbformat
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {{"name": "python3", "display_name": "Python 3", "language": "python"}}
for text in ({SHORT!r}, {LONG!r}):
    output = nbformat.v4.new_output("stream", name="stdout", text=text)
    nb.cells.append(nbformat.v4.new_code_cell("print(...)", execution_count=1, outputs=[output]))
nbformat.write(nb, "copytest.ipynb")
print(json.dumps({{"status": out.status}}))
"""

LIST_REQUESTS = """
import json, os, requests
api = os.environ["TRENV_API_URL"]
auth = {"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}
print(json.dumps(requests.get(api + "/airlock/requests", headers=auth, timeout=30).json()))
"""


@pytest.fixture(scope="module")
def rosa_server(hub: Hub) -> Iterator[docker.models.containers.Container]:
    # Project data the container sees read-only at /data (the vault would publish it here).
    data = hand_published_view(hub.settings, "proj-a")
    (data / "people.csv").write_text("person,region\np1,noord\n")
    (data / "people.csv").chmod(0o644)
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
    container = hub.container("rosa")
    prepared = run(container, PREPARE)
    assert json.loads(prepared.strip().splitlines()[-1])["status"] == "pass", prepared
    yield container
    hub.stop("rosa")


@pytest.fixture(scope="module")
def rosa_lab(hub: Hub, rosa_server: docker.models.containers.Container) -> LabSession:
    """Rosa's browser session (she holds no API token: the server refuses them)."""
    return LabSession.open(hub.url, "rosa", hub.totp["rosa"])


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("GET", "files/notes.md", "download"),
        ("GET", "files/outputs/reoffending_by_region.csv", "download"),
        ("GET", "api/contents/notes.md?download=1", "download"),
        ("GET", "nbconvert/html/copytest.ipynb?download=true", "download"),
        ("GET", "nbconvert/script/copytest.ipynb", "download"),
        ("POST", "nbconvert/html", "download"),
        ("GET", "view/notes.md", "download"),
        ("GET", "api/contents/people-link.txt", "data-read"),  # symlink into /data
        ("GET", "api/contents/people-link.txt?type=file&format=base64", "data-read"),
        ("GET", "api/contents/big.csv?type=file&format=text&content=1", "data-read"),
    ],
)
def test_blocked_endpoints_answer_403_with_the_way_out(
    hub: Hub, rosa_lab: LabSession, method: str, path: str, reason: str
) -> None:
    reply = rosa_lab.request(method, path)
    assert reply.status_code == 403, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert body["reason"] == reason
    assert "airlock" in body["export"] and "tre.save" in body["export"]


def test_uploads_over_the_policy_limit_are_refused(hub: Hub, rosa_lab: LabSession) -> None:
    content = base64.b64encode(b"x" * (11 * 1024 * 1024)).decode()
    model = {"type": "file", "format": "base64", "content": content}
    reply = rosa_lab.request("PUT", "api/contents/incoming.bin", json=model)
    assert reply.status_code == 403 and reply.json()["reason"] == "upload-size", reply.text[:300]


def test_notebook_save_and_ordinary_reads_still_work(hub: Hub, rosa_lab: LabSession) -> None:
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    saved = rosa_lab.request("PUT", "api/contents/saved.ipynb",
        json={"type": "notebook", "content": notebook},
    )  # fmt: skip
    assert saved.status_code == 201, saved.text[:300]
    read = rosa_lab.request("GET", "api/contents/saved.ipynb")
    assert read.status_code == 200 and read.json()["content"]["nbformat"] == 4
    small = rosa_lab.request("GET", "api/contents/outputs/reoffending_by_region.csv")
    assert small.status_code == 200 and "noord" in small.json()["content"]
    listing = rosa_lab.request("GET", "api/contents/")
    assert {"copytest.ipynb", "people-link.txt"} <= {i["name"] for i in listing.json()["content"]}
    config = rosa_lab.request("GET", "trenv/config").json()
    assert config["project"] == "proj-a" and config["policy"].startswith("sacro")


def _open_lab(browser: Browser, hub: Hub, path: str) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    page = context.new_page()
    hub_login(page, hub.url, "rosa", PASSWORD, hub.totp["rosa"])
    page.goto(f"{hub.url}/user/rosa/lab/{path}")
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    page.wait_for_function("document.body.dataset.trenvCopyLimit === '500'", timeout=60_000)
    time.sleep(1)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():  # e.g. a kernel choice: not what these tests are about
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached", timeout=10_000)
    return page


def test_outputs_panel_lists_the_output_and_submits_a_request(
    hub: Hub,
    rosa_server: docker.models.containers.Container,
    browser: Browser,
) -> None:
    page = _open_lab(browser, hub, "")
    page.click("li.lm-TabBar-tab[data-id='trenv-outputs-panel']")
    item = page.locator(".trenv-output[data-name='reoffending_by_region']")
    item.wait_for(timeout=30_000)
    assert item.get_attribute("data-status") == "pass"
    assert "outputs/reoffending_by_region.csv" in item.inner_text()
    item.locator(".trenv-include").check()
    item.locator(".trenv-justification").fill("Table 2 of the report; every cell has 10+ people.")
    page.fill(".trenv-title", "Reoffending by region (from the panel)")
    screenshot(page, "lab-outputs-panel")
    page.click(".trenv-submit")
    page.wait_for_selector(".trenv-message[data-kind='ok']", timeout=60_000)
    assert "submitted" in page.inner_text(".trenv-message")
    page.wait_for_selector(".trenv-request[data-state='submitted']", timeout=30_000)
    page.context.close()

    requests_seen = json.loads(run(rosa_server, LIST_REQUESTS).strip().splitlines()[-1])
    (mine,) = [r for r in requests_seen if r["title"] == "Reoffending by region (from the panel)"]
    assert mine["state"] == "submitted" and mine["files"] == 1 and mine["project"] == "proj-a"


def _menu_labels(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(".lm-Menu-itemLabel").all_inner_texts()]


def test_download_menu_items_are_absent(
    hub: Hub,
    rosa_server: docker.models.containers.Container,
    browser: Browser,
) -> None:
    page = _open_lab(browser, hub, "tree/copytest.ipynb")
    page.wait_for_selector(".jp-OutputArea-output", timeout=60_000)
    page.click(".lm-MenuBar-itemLabel:text-is('File')")
    page.wait_for_selector(".lm-Menu", timeout=10_000)
    labels = _menu_labels(page)
    assert "Save" in " ".join(labels), labels  # the menu is there...
    screenshot(page, "lab-file-menu")
    assert "Download" not in labels and "Save and Export Notebook As" not in labels, labels
    page.keyboard.press("Escape")

    notes = page.locator(".jp-DirListing-item[title*='notes.md']")
    if not notes.is_visible():  # the file browser may start closed
        page.click("li.lm-TabBar-tab[data-id='filebrowser']")
    notes.click(button="right")
    page.wait_for_selector(".lm-Menu", timeout=10_000)
    labels = _menu_labels(page)
    assert "Rename" in labels, labels  # ...and so is the file browser's context menu
    for gone in ("Download", "Copy Download Link", "Open in New Browser Tab"):
        assert gone not in labels, labels
    page.keyboard.press("Escape")
    page.context.close()


SELECT_OUTPUT = """(index) => {
  const node = document.querySelectorAll('.jp-OutputArea-output pre')[index];
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  return selection.toString().length;
}"""


def test_long_copies_out_of_outputs_are_blocked_short_ones_pass(
    hub: Hub,
    rosa_server: docker.models.containers.Container,
    browser: Browser,
) -> None:
    page = _open_lab(browser, hub, "tree/copytest.ipynb")
    page.wait_for_function(
        "document.querySelectorAll('.jp-OutputArea-output pre').length >= 2", timeout=60_000
    )
    page.click(".jp-OutputArea-output >> nth=0")

    page.evaluate("navigator.clipboard.writeText('sentinel')")
    selected = page.evaluate(SELECT_OUTPUT, 1)
    assert selected >= len(LONG)
    page.keyboard.press("Control+C")
    page.wait_for_function("document.body.dataset.trenvCopyBlocked === '1'", timeout=10_000)
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert LONG not in clipboard and len(clipboard) <= 500, clipboard[:80]
    screenshot(page, "lab-copy-refused")

    page.evaluate(SELECT_OUTPUT, 0)
    page.keyboard.press("Control+C")
    time.sleep(0.5)
    assert page.evaluate("navigator.clipboard.readText()").strip() == SHORT
    assert page.evaluate("document.body.dataset.trenvCopyBlocked") == "1"

    # A download link an output could carry (data: URL) is refused in the browser too.
    page.evaluate(DOWNLOAD_LINK)
    page.click("#trenv-test-download")
    assert page.evaluate("document.body.dataset.trenvDownloadBlocked") == "1"
    page.context.close()


DOWNLOAD_LINK = """() => {
  const a = document.createElement('a');
  a.id = 'trenv-test-download';
  a.href = 'data:text/csv;base64,YSxiCjEsMgo=';
  a.download = 'table.csv';
  a.textContent = 'download the table';
  document.querySelector('.jp-OutputArea-output').append(a);
}"""
