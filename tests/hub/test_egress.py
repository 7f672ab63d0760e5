"""Attacks on the egress boundary, run as a hostile researcher would run them.

Everything goes through the real proxy and hub to a real locked-down container, from outside
it, with the researcher's own credentials: first with an API token (refused outright), then
with nothing but the browser session (password + one-time code, cookies, XSRF, Origin).
Each attack tries to carry a whole dataset out; the test counts how many of its rows could be
rebuilt from what came back (fewer than 50 is the bar, issues 14 and 23) and checks that the
attempt left an audit event.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import html
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import docker
import pandas as pd
import pytest
import requests

from tests.hub.conftest import Hub, run
from tests.support.lab_session import LabSession
from tests.support.published import hand_published_view

pytestmark = pytest.mark.timeout(900)

ROWS = 7021
BAR = 50  # rows of a dataset that may be rebuilt from anything but a released bundle
WORK = "/home/jovyan/work"
HTML = {"accept": "text/html"}


def convictions() -> pd.DataFrame:
    """A dataset shaped like the demo's convictions view: a pseudonym per person."""
    rng = pd.Series(range(ROWS))
    return pd.DataFrame(
        {
            "person": [f"{(i * 2654435761) % 16**32:032x}" for i in range(ROWS)],
            "offence": rng.map(lambda i: ["fraud", "theft", "assault", "drugs"][i % 4]),
            "sentence_days": (rng * 37) % 900,
            "convicted_on": [
                dt.date(2015, 1, 1) + dt.timedelta(days=i % 3000) for i in range(ROWS)
            ],
        }
    )


DATA = convictions()
PEOPLE = set(DATA["person"])
_B64 = re.compile(r"[A-Za-z0-9+/=\s]{200,}")
_HEX = re.compile(r"[0-9a-fA-F\s]{200,}")


def recovered_rows(text: str) -> int:
    """How many rows of the dataset a determined reader rebuilds from ``text``: pseudonyms in
    clear, and any base64 or hex run that decodes to a parquet or CSV file of it."""
    found = {p for p in PEOPLE if p in text}
    blobs: list[bytes] = []
    for match in _B64.finditer(text):
        with contextlib.suppress(binascii.Error, ValueError):
            blobs.append(base64.b64decode(re.sub(r"\s", "", match.group()), validate=False))
    for match in _HEX.finditer(text):
        with contextlib.suppress(ValueError):
            blobs.append(bytes.fromhex(re.sub(r"\s", "", match.group())))
    for blob in blobs:
        for reader in (pd.read_parquet, pd.read_csv):
            try:
                frame = reader(io.BytesIO(blob))
            except Exception:  # any failure to parse means nothing was rebuilt
                continue
            if "person" in frame:
                found |= set(frame["person"].astype(str)) & PEOPLE
    return len(found)


def audit_actions(hub: Hub, actor: str, since: int) -> list[tuple[str, dict[str, object]]]:
    from trenv.audit import events
    from trenv.store import transaction

    with transaction(hub.settings) as session:
        return [
            (e.action, json.loads(e.detail))
            for e in events(session, action_prefix="egress.")
            if e.actor == actor and e.id > since
        ]


def audit_events(hub: Hub, prefix: str, since: int) -> list[Any]:
    from trenv.audit import events
    from trenv.store import transaction

    with transaction(hub.settings) as session:
        found = [e for e in events(session, action_prefix=prefix) if e.id > since]
        session.expunge_all()
        return found


def last_audit_id(hub: Hub) -> int:
    from trenv.audit import events
    from trenv.store import transaction

    with transaction(hub.settings) as session:
        return max((e.id for e in events(session)), default=0)


def wait_for_audit(hub: Hub, actor: str, since: int, action: str) -> list[dict[str, object]]:
    """The meter reports in the background (every few seconds): wait for the event."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [d for a, d in audit_actions(hub, actor, since) if a == action]
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"no {action} audit event for {actor} after event {since}")


PREPARE = f"""
import base64, json, os, shutil
import nbformat
import pandas as pd
os.chdir({WORK!r})
df = pd.read_parquet("/data/convictions.parquet")
shutil.copy("/data/convictions.parquet", "copy.parquet")
os.makedirs("hidden/deeper", exist_ok=True)
shutil.copy("/data/convictions.parquet", "hidden/deeper/notes.txt")
df.to_csv("all.csv", index=False)
df.to_csv("all.txt", index=False, sep="\\t")
with open("b64.txt", "w") as f:
    f.write(base64.b64encode(open("/data/convictions.parquet", "rb").read()).decode())
with open("hex.md", "w") as f:
    f.write(open("/data/convictions.parquet", "rb").read().hex())
df.head(300).to_json("some.json", orient="records")
nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {{"name": "python3", "display_name": "Python 3", "language": "python"}}
cell = nbformat.v4.new_code_cell("print(df.to_string())", execution_count=1)
cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=df.to_string())]
nb.cells.append(cell)
nbformat.write(nb, "analysis.ipynb")
with open("small.csv", "w") as f:
    f.write("offence,count\\nfraud,1755\\ntheft,1755\\n")
with open("notes.md", "w") as f:
    f.write("# Notes\\nReoffending by region, first look.\\n")
print("PREPARED")
"""


@pytest.fixture(scope="module")
def rosa(hub: Hub) -> Iterator[docker.models.containers.Container]:
    data = hand_published_view(hub.settings, "proj-a")
    DATA.to_parquet(data / "convictions.parquet", index=False)
    (data / "convictions.parquet").chmod(0o644)
    reply = hub.spawn("rosa", "proj-a")
    assert reply.status_code in (201, 202), reply.text
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if (hub.api("GET", "/users/rosa").json().get("servers") or {}).get("", {}).get("ready"):
            break
        time.sleep(0.5)
    else:
        pytest.fail("rosa's server did not become ready within 180 s")
    container = hub.container("rosa")
    assert "PREPARED" in run(container, PREPARE)
    yield container
    hub.stop("rosa")


@pytest.fixture(scope="module")
def lab(hub: Hub, rosa: docker.models.containers.Container) -> LabSession:
    return LabSession.open(hub.url, "rosa", hub.totp["rosa"])


# --- tokens: researchers have none, and the server refuses any that is not a login ---------


def test_researcher_cannot_mint_an_api_token(hub: Hub, lab: LabSession) -> None:
    hub_headers = {
        "X-XSRFToken": lab.http.cookies.get("_xsrf", path="/hub/") or "",
        "Referer": f"{hub.url}/hub/home",
    }
    reply = lab.http.post(
        f"{hub.url}/hub/api/users/rosa/tokens",
        json={"note": "exfil"},
        headers=hub_headers,
        timeout=60,
    )
    # Refused for want of the 'tokens' scope (not for a missing XSRF token: the same session
    # may still stop its own server through the API).
    assert reply.status_code == 403, (reply.status_code, reply.text[:300])
    assert "tokens" in reply.json()["message"], reply.text[:300]


@pytest.mark.parametrize("where", ["header", "query"])
def test_server_refuses_tokens_that_are_not_a_browser_login(
    hub: Hub, lab: LabSession, rosa: docker.models.containers.Container, where: str
) -> None:
    since = last_audit_id(hub)
    # An administrator's token for rosa, and the server's own token read in a notebook.
    tokens = [
        hub.user_token("rosa"),
        run(rosa, "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])").strip(),
    ]
    for token in tokens:
        url = lab.url("api/contents/notes.md")
        if where == "header":
            reply = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=60)
        else:
            reply = requests.get(f"{url}?token={token}", timeout=60, allow_redirects=False)
        assert reply.status_code == 403, (reply.status_code, reply.text[:300])
        assert "notes" not in reply.text
        if where == "header":  # JupyterHub itself already refuses tokens in URLs
            assert "browser login" in reply.text, reply.text[:300]
        kernel = requests.post(
            lab.url("api/kernels"), headers={"Authorization": f"token {token}"}, timeout=60
        )
        assert kernel.status_code == 403, kernel.status_code
    if where == "header":
        refused = wait_for_audit(hub, "rosa", since, "egress.refused")
        assert any(d.get("rule") == "token" for d in refused)


def test_the_browser_session_still_works_for_ordinary_reads(lab: LabSession) -> None:
    listing = lab.request("GET", "api/contents/")
    assert listing.status_code == 200
    names = {item["name"] for item in listing.json()["content"]}
    assert {"notes.md", "all.csv", "analysis.ipynb"} <= names
    notes = lab.request("GET", "api/contents/notes.md?type=file&format=text&content=1")
    assert notes.status_code == 200 and "Reoffending" in notes.json()["content"]
    small = lab.request("GET", "api/contents/small.csv?type=file&format=text&content=1")
    assert small.status_code == 200 and "fraud" in small.json()["content"]


# --- terminals: off under this project's profile -----------------------------------------


def test_terminals_are_off(hub: Hub, lab: LabSession) -> None:
    reply = lab.request("POST", "api/terminals")
    assert reply.status_code in (403, 404), (reply.status_code, reply.text[:300])
    assert "/terminals" not in json.dumps(lab.request("GET", "api/terminals").json()) or (
        lab.request("GET", "api/terminals").status_code in (403, 404)
    )


# --- the contents API: copies of the data in the workspace --------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "copy.parquet",
        "hidden/deeper/notes.txt",  # parquet bytes under an innocent name
        "all.csv",
        "all.txt",
        "b64.txt",
        "hex.md",
        "some.json",
    ],
)
@pytest.mark.parametrize("fmt", ["text", "base64"])
def test_copies_of_data_are_refused_on_read(hub: Hub, lab: LabSession, path: str, fmt: str) -> None:
    since = last_audit_id(hub)
    reply = lab.request("GET", f"api/contents/{path}?type=file&format={fmt}&content=1")
    assert reply.status_code == 403, (path, fmt, reply.status_code, reply.text[:200])
    assert recovered_rows(reply.text) == 0
    assert "airlock" in reply.json()["export"]
    wait_for_audit(hub, "rosa", since, "egress.refused")


def test_a_notebook_opens_with_its_data_output_withheld(
    hub: Hub, lab: LabSession, rosa: docker.models.containers.Container
) -> None:
    reply = lab.request("GET", "api/contents/analysis.ipynb?type=notebook&content=1")
    assert reply.status_code == 200, reply.text[:300]
    assert recovered_rows(reply.text) < BAR
    assert "withheld" in reply.text.lower()
    # The file on disk keeps its output: only what leaves for the browser is cut.
    on_disk = run(rosa, f"print(len(open('{WORK}/analysis.ipynb').read()))")
    assert int(on_disk.strip()) > 300_000


# --- kernels over the websocket ----------------------------------------------------------


DUMP = "import pandas as pd\ndf = pd.read_parquet('/data/convictions.parquet')\n"


@pytest.mark.parametrize(
    "code",
    [
        "import base64\nprint(base64.b64encode(open('/data/convictions.parquet','rb').read()))",
        "print(open('/data/convictions.parquet','rb').read().hex())",
        "print(open('/data/convictions.parquet','rb').read())",
        DUMP + "print(df.to_csv())",
        DUMP + "print(df.to_string())",
        DUMP + "from IPython.display import HTML, display\ndisplay(HTML(df.to_html()))",
        DUMP + "import sys\nfor i in range(0, len(df), 40): print(df.iloc[i:i+40].to_csv())",
        DUMP + "df",  # pandas' own display: truncated to a few rows
    ],
    ids=["base64", "hex", "bytes", "csv", "to_string", "html", "csv-in-one-cell-chunks", "display"],
)
def test_dataset_printed_in_one_go_does_not_reach_the_browser(
    hub: Hub, lab: LabSession, code: str
) -> None:
    kernel = lab.start_kernel()
    try:
        out = kernel.execute(code)
    finally:
        kernel.close()
    assert out.messages, "the execution sent nothing back"
    assert recovered_rows(out.text) < BAR, out.text[:500]


def test_normal_work_reaches_the_browser_untouched(lab: LabSession) -> None:
    kernel = lab.start_kernel()
    try:
        shown = kernel.execute(DUMP + "df.groupby('offence').size()")
        figure = kernel.execute(
            "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
            "import matplotlib.pyplot as plt\nplt.bar(['a','b'],[3,4]); plt.show()"
        )
    finally:
        kernel.close()
    assert "fraud" in shown.text and "withheld" not in shown.text.lower()
    assert any("image/png" in (m["content"].get("data") or {}) for m in figure.messages)


def test_each_cut_is_audited(hub: Hub, lab: LabSession) -> None:
    since = last_audit_id(hub)
    kernel = lab.start_kernel()
    try:
        out = kernel.execute(DUMP + "print(df.to_csv())")
    finally:
        kernel.close()
    assert "withheld" in out.text.lower()
    cut = wait_for_audit(hub, "rosa", since, "egress.cut")
    assert all("fraud" not in json.dumps(d) for d in cut)  # no data in the audit trail


DRAFT = f"""
import base64, json, os, requests
from PIL import Image, PngImagePlugin
os.chdir({WORK!r})
payload = open("/data/convictions.parquet", "rb").read()
width = 256
padded = payload + bytes(-len(payload) % (width * 3))
img = Image.frombytes("RGB", (width, len(padded) // (width * 3)), padded)
info = PngImagePlugin.PngInfo()
info.add_text("data", base64.b64encode(payload).decode())
os.makedirs("outputs", exist_ok=True)
img.save("outputs/figure.png", pnginfo=info)
api = os.environ["TRENV_API_URL"]
auth = {{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}}
paths = ["outputs/figure.png", "all.csv", "b64.txt", "analysis.ipynb"]
reply = requests.post(api + "/airlock/requests", headers=auth, timeout=120, json={{
    "title": "first look", "files": [{{"path": p, "justification": "draft"}} for p in paths]}})
print("DRAFT " + json.dumps({{"code": reply.status_code, "body": reply.json()}}))
"""


def rows_in_png(data: bytes) -> int:
    """Rows rebuilt from a PNG: its pixel bytes read as a parquet file, and its text chunks."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    texts = " ".join(str(v) for v in img.info.values())
    found = recovered_rows(texts)
    raw = img.convert("RGB").tobytes()
    with contextlib.suppress(Exception):  # any failure to parse means nothing was rebuilt
        frame = pd.read_parquet(io.BytesIO(raw.rstrip(b"\0")))
        found += len(set(frame["person"].astype(str)) & PEOPLE)
    return found


@pytest.fixture(scope="module")
def web(hub: Hub, lab: LabSession) -> requests.Session:
    """rosa's browser session logged in to the trenv service too (its OAuth dance)."""
    home = lab.http.get(f"{hub.url}/services/trenv/", headers=HTML, timeout=120)
    assert home.status_code == 200 and home.url.startswith(f"{hub.url}/services/trenv/"), (
        home.status_code,
        home.url,
    )
    return lab.http


@pytest.fixture(scope="module")
def draft(rosa: docker.models.containers.Container) -> dict[str, object]:
    """A draft export request of rosa's, never submitted: the whole dataset packed into a
    PNG (pixels and a tEXt chunk), as CSV, as base64 text and in a notebook's output."""
    out = run(rosa, DRAFT)
    line = next(x for x in out.splitlines() if x.startswith("DRAFT "))
    created = json.loads(line.removeprefix("DRAFT "))
    assert created["code"] == 201, created
    body: dict[str, object] = created["body"]
    return body


def test_an_unsubmitted_draft_gives_its_author_no_bytes(
    hub: Hub, web: requests.Session, draft: dict[str, object]
) -> None:
    """Issue 14, leak 1: the raw route served a draft's packed PNG to its author."""
    since = last_audit_id(hub)
    files = {f["path"]: f for f in draft["file_list"]}  # type: ignore[attr-defined]
    figure = files["outputs/figure.png"]
    assert "figure-packed" in {
        f["rule_id"] for f in figure["check"]["findings"] if f["status"] == "fail"
    }
    base = f"{hub.url}/services/trenv/requests/{draft['id']}/files/{figure['id']}"
    raw = web.get(f"{base}/raw", headers=HTML, timeout=120)
    assert raw.status_code == 403 and "released bundle" in raw.text, raw.status_code
    assert b"\x89PNG" not in raw.content
    preview = web.get(f"{base}/preview.png", headers=HTML, timeout=120)
    assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG"
    assert rows_in_png(preview.content) < BAR
    with_refusal = [
        e for e in audit_events(hub, "airlock.file.refused", since) if e.actor == "rosa"
    ]
    assert with_refusal, "the refused read left no audit event"


def test_the_request_page_shows_the_author_no_dataset(
    hub: Hub, web: requests.Session, draft: dict[str, object]
) -> None:
    page = web.get(f"{hub.url}/services/trenv/requests/{draft['id']}", headers=HTML, timeout=120)
    assert page.status_code == 200 and "first look" in page.text, page.status_code
    shown = html.unescape(page.text)
    assert "Showing 48 of 7,021 rows" in shown
    assert recovered_rows(shown) < BAR
    for uri in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page.text):
        assert rows_in_png(base64.b64decode(uri)) < BAR


def test_uploads_stop_at_the_days_total(hub: Hub, lab: LabSession) -> None:
    """Issue 14: three 9 MiB files passed the per-file limit; a total per day stops them."""
    since = last_audit_id(hub)
    content = base64.b64encode(bytes(range(256)) * (9 * 4096)).decode()  # 9 MiB
    model = {"type": "file", "format": "base64", "content": content}
    accepted: list[str] = []
    refusal = None
    for i in range(8):
        reply = lab.request("PUT", f"api/contents/incoming-{i}.bin", json=model)
        if reply.status_code != 201:
            refusal = reply
            break
        accepted.append(f"incoming-{i}.bin")
    for name in accepted:  # the workspace back as it was
        assert lab.request("DELETE", f"api/contents/{name}").status_code == 204
    assert refusal is not None, "eight 9 MiB uploads in a day were all accepted"
    assert refusal.status_code == 403 and refusal.json()["reason"] == "upload-day"
    assert "00:00 UTC" in refusal.json()["message"]
    assert 3 <= len(accepted) <= 5  # 50 MB a day under trenv-default
    refused = wait_for_audit(hub, "rosa", since, "egress.refused")
    assert any(d.get("rule") == "upload-day" for d in refused), refused


CHECKS = f"""
import json, os, requests
import nbformat
import pandas as pd
os.chdir({WORK!r})
os.makedirs("outputs", exist_ok=True)
df = pd.read_parquet("/data/convictions.parquet").head(300)
nb = nbformat.v4.new_notebook()
cell = nbformat.v4.new_code_cell("df.head(300)", execution_count=1)
cell.outputs = [nbformat.v4.new_output("execute_result", data={{"text/plain": df.to_string()}},
                                       execution_count=1)]
nb.cells.append(cell)
nbformat.write(nb, "outputs/rows.ipynb")
files = {{
    "outputs/blanked.csv": "offence,n\\ntheft,120\\nfraud,\\nburglary,95\\nTotal,218\\n",
    "outputs/formula.csv": "offence,n\\ntheft,120\\n=HYPERLINK(\\"http://203.0.113.9/x\\"),130\\n",
    "outputs/all.csv": "offence,n\\ntheft,120\\nfraud,40\\n",
    "outputs/most.csv": "offence,n\\ntheft,118\\nfraud,40\\n",
}}
for path, text in files.items():
    open(path, "w").write(text)
api = os.environ["TRENV_API_URL"]
auth = {{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}}
def request(*paths):
    reply = requests.post(api + "/airlock/requests", headers=auth, timeout=120, json={{
        "title": "checks", "submit": True,
        "files": [{{"path": p, "justification": "results"}} for p in paths]}})
    assert reply.status_code == 201, reply.text
    return {{f["path"]: f["check"] for f in reply.json()["file_list"]}}
checks = request("outputs/rows.ipynb", "outputs/blanked.csv", "outputs/formula.csv",
                 "outputs/all.csv")
checks.update(request("outputs/most.csv"))
print("CHECKS " + json.dumps(checks))
"""


def test_the_automatic_checks_fail_what_they_used_to_pass(
    rosa: docker.models.containers.Container,
) -> None:
    """Issue 14, leak 4: each of these was an automatic `pass` a checker could wave through."""
    out = run(rosa, CHECKS)
    line = next(x for x in out.splitlines() if x.startswith("CHECKS "))
    checks = json.loads(line.removeprefix("CHECKS "))

    def failed(path: str) -> set[str]:
        return {f["rule_id"] for f in checks[path]["findings"] if f["status"] == "fail"}

    assert checks["outputs/rows.ipynb"]["status"] == "fail"
    assert "margins-recover" in failed("outputs/blanked.csv")
    assert "formula" in failed("outputs/formula.csv")
    assert "population-difference" not in failed("outputs/all.csv")
    assert "population-difference" in failed("outputs/most.csv")  # 120 vs 118 thefts
    assert all(checks[p]["status"] == "fail" for p in checks if p != "outputs/all.csv")


TRACE = """
import ctypes, errno, json, os, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
server = os.getppid()
found = {"cmdline": open(f"/proc/{server}/cmdline", "rb").read().replace(b"\\0", b" ").decode()}
child = subprocess.Popen(["sleep", "30"])
for _ in range(50):  # Popen returns while exec may still be setting up the new environment
    time.sleep(0.1)
    if open(f"/proc/{child.pid}/environ", "rb").read():
        break
found["own child's environ"] = len(open(f"/proc/{child.pid}/environ", "rb").read()) > 0
child.kill()
for name in ("environ", "mem", "maps"):
    try:
        with open(f"/proc/{server}/{name}", "rb") as f:
            found[name] = "READ %d bytes" % len(f.read(64))
    except OSError as exc:
        found[name] = errno.errorcode.get(exc.errno, str(exc.errno))
if libc.ptrace(16, server, None, None) == 0:  # PTRACE_ATTACH
    found["ptrace"] = "ATTACHED"
    libc.ptrace(17, server, None, None)  # PTRACE_DETACH
else:
    found["ptrace"] = errno.errorcode.get(ctypes.get_errno(), "?")
print("TRACE " + json.dumps(found))
"""


def test_a_kernel_cannot_trace_or_read_its_notebook_server(lab: LabSession) -> None:
    """The kernel runs as the server's uid: without the server's non-dumpable flag it could
    ptrace the server or write its memory and patch the output judge out."""
    kernel = lab.start_kernel()
    try:
        out = kernel.execute(TRACE)
    finally:
        kernel.close()
    line = next(x for x in out.text.splitlines() if x.startswith("TRACE "))
    found = json.loads(line.removeprefix("TRACE "))
    assert "jupyterhub-singleuser" in found["cmdline"]  # the parent is the server itself
    assert found["own child's environ"] is True  # the probe works on an ordinary process
    assert found["environ"] in ("EACCES", "EPERM"), found
    assert found["mem"] in ("EACCES", "EPERM"), found
    assert found["maps"] in ("EACCES", "EPERM"), found
    assert found["ptrace"] == "EPERM", found


def test_slow_chunked_printing_is_stopped_by_the_meter(hub: Hub, lab: LabSession) -> None:
    """Forty rows a cell passes the per-output judgement; the meter stops it by volume."""
    since = last_audit_id(hub)
    kernel = lab.start_kernel()
    stopped_at = None
    try:
        kernel.execute(DUMP + "pos = 0")
        for cell in range(3000):
            out = kernel.execute(
                "print(df.iloc[pos % len(df):pos % len(df) + 40].to_csv(header=False)); pos += 40"
            )
            if "stopped for this hour" in out.text:  # the meter's own message
                stopped_at = cell
                break
    finally:
        kernel.close()
    assert stopped_at is not None, "the meter never stopped the chunked printing"
    wait_for_audit(hub, "rosa", since, "egress.warn")
    wait_for_audit(hub, "rosa", since, "egress.stopped")
