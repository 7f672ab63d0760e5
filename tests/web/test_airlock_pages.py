"""The airlock's pages: my requests, the new-request form, the queue, the request page."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.support.images import (
    chart,
    chunk_types,
    packed_png,
    parquet_file,
    smuggling_chunks,
    with_chunks,
)
from tests.web.airlock_world import (
    OUTSIDE,
    PNG_1PX,
    SAFE_CSV,
    SMALL_CSV,
    Tx,
    World,
    auth,
    build_world,
)
from trenv import audit
from trenv.airlock.bundle import verify_bundle
from trenv.airlock.queries import frozen_bytes
from trenv.config import Settings
from trenv.judge.image import KEPT_CHUNKS
from trenv.web.workspace_files import list_workspace_files

P = "/services/trenv/"
NOTES = b"# Notes\n\n<script>y()</script> fine"
HTML = {"accept": "text/html"}


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def page(w: World, path: str, token: str, *, inside: bool = False) -> httpx.Response:
    client = w.inside if inside else w.outside
    return client.get(P + path, headers={**HTML, **auth(token)})


def post(w: World, path: str, token: str, data: dict[str, object]) -> httpx.Response:
    return w.outside.post(
        P + path, data=data, headers={**HTML, **auth(token)}, follow_redirects=False
    )


def follow(w: World, reply: httpx.Response, token: str) -> httpx.Response:
    """The page a form post redirected to (with its flash cookie)."""
    assert reply.status_code == 303, reply.text
    location = reply.headers["location"]
    return w.outside.get(location, headers={**HTML, **auth(token)})


def text_of(reply: httpx.Response) -> str:
    """The page's visible text, roughly (tags dropped, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", reply.text)).split())


# --- the workspace listing --------------------------------------------------------------------


def test_workspace_listing_offers_only_regular_allowed_files(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "outputs" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "outputs" / "table.csv").write_bytes(SAFE_CSV)
    (root / "outputs" / "table.record.json").write_text("{}")  # travels with its table
    (root / "outputs" / ".ipynb_checkpoints" / "old.csv").write_bytes(SAFE_CSV)
    (root / "outputs" / "run.sh").write_text("echo")
    (root / "fig.PNG").write_bytes(PNG_1PX)
    outside = tmp_path / "data.csv"
    outside.write_bytes(SAFE_CSV)
    (root / "outputs" / "leak.csv").symlink_to(outside)
    (root / "linked").symlink_to(tmp_path)
    deep = root / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "too-deep.csv").write_bytes(SAFE_CSV)
    (root / "a" / "b" / "c" / "ok.csv").write_bytes(SAFE_CSV)
    listed = list_workspace_files(root)
    assert [f.path for f in listed] == ["a/b/c/ok.csv", "fig.PNG", "outputs/table.csv"]
    assert listed[2].size == len(SAFE_CSV) and listed[2].kind == "table"
    assert list_workspace_files(tmp_path / "missing") == []
    assert list_workspace_files(root / "linked") == []
    assert len(list_workspace_files(root, max_listed=1)) == 1


# --- researcher pages -------------------------------------------------------------------------


def test_new_request_form_and_my_requests(w: World) -> None:
    w.write("outputs/table.csv", SAFE_CSV)
    w.write("outputs/fig.png", PNG_1PX)
    form = page(w, "requests/new", "t-rita")
    assert form.status_code == 200
    # rita is in one project: it is chosen, and her workspace files are offered
    assert 'name="project" value="reoffending"' in form.text
    assert "outputs/fig.png" in form.text and "outputs/table.csv" in form.text
    paths = dict(re.findall(r'name="path-(\d+)" value="([^"]+)"', form.text))
    table = next(i for i, p in paths.items() if p == "outputs/table.csv")
    reply = post(
        w,
        "requests/new",
        "t-rita",
        {
            "project": "reoffending",
            "title": "Regions",
            "pick": [table],
            f"path-{table}": "outputs/table.csv",
            f"why-{table}": "for the paper",
            "submit": "yes",
        },
    )
    shown = follow(w, reply, "t-rita")
    assert reply.headers["location"].startswith(P + "requests/")
    assert "Request submitted." in shown.text and "submitted" in text_of(shown)
    assert "for the paper" in shown.text
    mine = page(w, "requests", "t-rita")
    assert "Regions" in mine.text and "badge-submitted" in mine.text
    # another project's member is not offered rita's project
    assert "reoffending" not in page(w, "requests/new", "t-olga").text


def test_a_refused_form_comes_back_with_the_reason_and_changes_nothing(w: World) -> None:
    w.write("outputs/run.sh", b"echo")
    reply = post(
        w,
        "requests/new",
        "t-rita",
        {
            "project": "reoffending",
            "title": "Script",
            "pick": ["0"],
            "path-0": "outputs/run.sh",
            "why-0": "x",
        },
    )
    back = follow(w, reply, "t-rita")
    assert "cannot leave the TRE" in back.text and "notice-fail" in back.text
    assert w.call("GET", "/requests", "t-rita").json() == []  # the draft was rolled back too
    # the notice is shown once
    assert (
        "cannot leave the TRE"
        not in w.outside.get(P + "requests/new", headers={**HTML, **auth("t-rita")}).text
    )


def test_escaped_names_titles_and_justifications(w: World) -> None:
    evil = "<img src=x onerror=alert(1)>.csv"
    w.write(f"outputs/{evil}", SAFE_CSV)
    reply = w.create(
        title="<script>alert('t')</script>",
        files=[{"path": f"outputs/{evil}", "justification": "<script>j()</script>"}],
        submit=True,
    )
    assert reply.status_code == 201, reply.text
    rid = reply.json()["id"]
    for token, path in (
        ("t-rita", f"requests/{rid}"),
        ("t-chris", f"requests/{rid}"),
        ("t-rita", "requests"),
        ("t-chris", "queue"),
    ):
        shown = page(w, path, token)
        assert shown.status_code == 200
        assert "<script>alert" not in shown.text and "<img src=x" not in shown.text
        assert "<script>j()" not in shown.text
    assert "&lt;script&gt;alert(" in page(w, f"requests/{rid}", "t-chris").text
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page(w, f"requests/{rid}", "t-chris").text


# --- checker pages ----------------------------------------------------------------------------


def test_queue_page(w: World) -> None:
    first = w.submitted()
    second = w.submitted(("outputs/small.csv", SMALL_CSV))
    w.approve_all(first, "kim")
    shown = page(w, "queue", "t-chris")
    assert shown.status_code == 200
    text = text_of(shown)
    assert text.index("Reoffending by region") < text.rindex("Reoffending by region")
    rows = re.findall(r"<tr>\s*<td class=\"num\">(\d+)</td>", shown.text)
    assert rows == [str(first["id"]), str(second["id"])]  # oldest first
    assert "1 of 2" in text and "0 of 2" in text and "check failed" in text
    assert "rita" in text and "reoffending" in text
    filtered = page(w, "queue?state=submitted", "t-chris")
    assert re.findall(r"<tr>\s*<td class=\"num\">(\d+)</td>", filtered.text) == [str(second["id"])]
    assert "Nothing waiting" in page(w, "queue?min_age=24", "t-chris").text
    assert "Nothing waiting" in page(w, "queue", "t-pete").text  # his own project
    refused = page(w, "queue", "t-rita")
    assert refused.status_code == 403 and "custom:trenv:review" in refused.text


def test_request_page_for_a_checker_highlights_flagged_cells(w: World) -> None:
    req = w.submitted(("outputs/small.csv", SMALL_CSV), ("outputs/fig.png", PNG_1PX))
    shown = page(w, f"requests/{req['id']}", "t-chris")
    assert shown.status_code == 200
    flagged = re.findall(r'<td class="flag" title="([^"]+)">([^<]*)</td>', shown.text)
    assert len(flagged) == 1
    reason, value = flagged[0]
    assert value == "2" and "small-counts" in reason and "threshold" in html.unescape(reason)
    text = text_of(shown)
    assert "for the paper" in text  # the justification
    assert "check failed" in text and "below the policy threshold" in text  # the checks
    assert "needed to approve: this file failed a check" in text
    assert text.count("Record vote") == 2  # one vote form per file
    fig = next(f for f in req["file_list"] if f["path"] == "outputs/fig.png")
    assert f'src="{P}requests/{req["id"]}/files/{fig["id"]}/raw"' in shown.text
    # the requester sees the same previews, without vote forms, and the figure's preview only
    mine = page(w, f"requests/{req['id']}", "t-rita")
    assert 'class="flag"' in mine.text and "Record vote" not in mine.text
    assert f'src="{P}requests/{req["id"]}/files/{fig["id"]}/preview.png"' in mine.text
    assert f"files/{fig['id']}/raw" not in mine.text


def raw_refused(w: World, url: str, token: str, *why: str) -> None:
    """403 naming why, and the way out: the released bundle; the attempt is audited."""
    got = page(w, url, token)
    assert got.status_code == 403, (token, got.status_code)
    with w.tx() as session:
        last = list(audit.events(session, action_prefix="airlock.file.refused"))[-1]
    assert last.actor == w.identity.users[token].name
    assert f"/files/{json.loads(last.detail)['file_id']}/" in url
    text = text_of(got)
    assert "files leave the tre only in a released bundle" in text.lower(), text
    for needle in why:
        assert needle in text, (needle, text)
    assert PNG_1PX not in got.content


def test_raw_figures_go_only_to_the_checkers_reviewing_the_request(w: World) -> None:
    req = w.submitted(("outputs/fig.png", PNG_1PX), ("outputs/t.csv", SAFE_CSV))
    fig, table = (
        next(f for f in req["file_list"] if f["path"] == p)
        for p in ("outputs/fig.png", "outputs/t.csv")
    )
    url = f"requests/{req['id']}/files/{fig['id']}/raw"
    frozen = frozen_bytes(w.settings, fig["sha256"])
    for token in ("t-chris", "t-kim"):  # independent checkers of a submitted request
        got = page(w, url, token)
        assert got.status_code == 200 and got.content == frozen
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-disposition"].startswith("inline;")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["cache-control"] == "no-store"
    raw_refused(w, url, "t-rita", "is yours")  # the requester, though it is submitted
    raw_refused(w, url, "t-nora", "member of project reoffending")  # a colleague
    raw_refused(w, url, "t-pete", "member of project reoffending")  # a checker in the project
    raw_refused(w, url, "t-fred", "member of project reoffending")  # ...or formerly in it
    raw_refused(w, url, "t-vic", "custom:trenv:review")  # a checker without the hub scope
    raw_refused(w, url, "t-adam", "only independent output checkers")  # an admin
    assert page(w, url, "t-olga").status_code == 404  # not her project: not even seen
    # a table is never served raw, not even to a checker: its preview is in the page
    assert page(w, f"requests/{req['id']}/files/{table['id']}/raw", "t-chris").status_code == 404
    assert page(w, f"requests/{req['id']}/files/9999/raw", "t-chris").status_code == 404
    # once decided, the review needs the bytes no more
    w.approve_all(req, "chris", "kim")
    raw_refused(w, url, "t-chris", "is approved")


def test_a_draft_figure_is_not_served_raw_to_anyone(w: World) -> None:
    w.write("outputs/fig.png", PNG_1PX)
    body = [{"path": "outputs/fig.png", "justification": "figure 1"}]
    draft = w.create(files=body).json()
    assert draft["state"] == "draft"
    url = f"requests/{draft['id']}/files/{draft['file_list'][0]['id']}/raw"
    raw_refused(w, url, "t-rita", "is yours")
    raw_refused(w, url, "t-chris", "is draft")


def test_the_packed_dataset_attack_gets_only_a_coarse_preview(w: World) -> None:
    """Issue 14: a parquet file in a PNG's pixels and zTXt chunk, in a draft, fetched from
    the researcher's own machine."""
    payload = parquet_file()
    w.write("outputs/fig.png", with_chunks(packed_png(payload), *smuggling_chunks(payload)))
    body = [{"path": "outputs/fig.png", "justification": "a figure, honestly"}]
    draft = w.create(files=body).json()
    fig = draft["file_list"][0]
    assert fig["check"]["status"] == "fail"
    assert {"figure-packed", "figure-metadata"} <= {
        f["rule_id"] for f in fig["check"]["findings"] if f["status"] == "fail"
    }
    base = f"requests/{draft['id']}/files/{fig['id']}"
    raw_refused(w, f"{base}/raw", "t-rita")
    frozen = frozen_bytes(w.settings, fig["sha256"])
    shown = page(w, f"{base}/preview.png", "t-rita")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert shown.headers["cache-control"] == "no-store"
    assert shown.headers["x-content-type-options"] == "nosniff"
    preview = shown.content
    assert preview != frozen and payload[:64] not in preview
    assert set(chunk_types(preview)) <= KEPT_CHUNKS
    img = Image.open(io.BytesIO(preview))
    assert max(img.size) <= 480 and len(img.getcolors() or []) <= 16
    # at most 4 bits a pixel: the whole preview holds less than a quarter of the file
    assert img.width * img.height * 4 // 8 < len(payload) // 4
    assert payload[100:132] not in np.asarray(img.convert("RGB")).tobytes()
    # the page shows her the preview, never the raw route
    mine = page(w, f"requests/{draft['id']}", "t-rita")
    assert f'src="{P}{base}/preview.png"' in mine.text and f"{base}/raw" not in mine.text
    assert "leaves the TRE only in the released bundle" in text_of(mine)


def test_previews_are_for_anyone_who_may_see_the_request(w: World) -> None:
    req = w.submitted(("outputs/fig.png", chart("bar")), ("outputs/t.csv", SAFE_CSV))
    fig, table = (
        next(f for f in req["file_list"] if f["path"] == p)
        for p in ("outputs/fig.png", "outputs/t.csv")
    )
    base = f"requests/{req['id']}/files"
    for token in ("t-rita", "t-nora", "t-chris", "t-adam"):
        got = page(w, f"{base}/{fig['id']}/preview.png", token)
        assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).width <= 480
    assert page(w, f"{base}/{fig['id']}/preview.png", "t-olga").status_code == 404
    assert page(w, f"{base}/{table['id']}/preview.png", "t-rita").status_code == 404


def test_notebooks_and_text_are_rendered_inert(w: World) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Results <script>x()</script>"),
        nbformat.v4.new_code_cell("print('<b>hi</b>')"),
    ]
    notebook = nbformat.writes(nb).encode()
    req = w.submitted(("outputs/analysis.ipynb", notebook), ("outputs/notes.md", NOTES))
    shown = page(w, f"requests/{req['id']}", "t-chris")
    assert shown.status_code == 200
    assert "<script>" not in shown.text
    assert 'class="notebook"' in shown.text and "print(&#x27;&lt;b&gt;hi&lt;/b&gt;&#x27;)" in (
        shown.text
    )
    assert "<h1>Notes</h1>" in shown.text


def test_blinded_votes_on_the_page(w: World) -> None:
    req = w.submitted()
    fid = req["file_list"][0]["id"]
    w.vote("chris", req["id"], fid, comment="chris thinks this is fine")
    assert "chris thinks" not in page(w, f"requests/{req['id']}", "t-kim").text
    assert "chris thinks" not in page(w, f"requests/{req['id']}", "t-rita").text
    assert "chris thinks" in page(w, f"requests/{req['id']}", "t-chris").text


# --- the whole day, through the pages ---------------------------------------------------------


def browser(w: World, token: str) -> TestClient:
    """A browser logged in through the (static) hub OAuth flow: a session cookie, no header."""
    code = f"code-{token}"
    w.identity.codes[code] = token
    client = TestClient(w.outside.app, client=OUTSIDE)
    login = client.get(P + "oauth_login", follow_redirects=False)
    state = login.headers["location"].split("state=")[1].split("&")[0]
    done = client.get(P + f"oauth_callback?code={code}&state={state}", follow_redirects=False)
    assert done.status_code == 302
    return client


def test_researcher_and_two_checkers_through_the_pages(w: World, tx: Tx) -> None:
    original = SMALL_CSV
    w.write("outputs/small.csv", original)
    rita, chris, kim = browser(w, "t-rita"), browser(w, "t-chris"), browser(w, "t-kim")
    form = rita.get(P + "requests/new", headers=HTML)
    index = dict((p, i) for i, p in re.findall(r'name="path-(\d+)" value="([^"]+)"', form.text))
    i = index["outputs/small.csv"]
    made = rita.post(
        P + "requests/new",
        headers=HTML,
        follow_redirects=False,
        data={
            "project": "reoffending",
            "title": "Offences",
            "pick": [i],
            f"path-{i}": "outputs/small.csv",
            f"why-{i}": "counts of offences, not people",
            "submit": "yes",
        },
    )
    assert made.status_code == 303
    url = made.headers["location"]
    rid = int(url.rsplit("/", 1)[1])
    fid = w.call("GET", f"/requests/{rid}", "t-rita").json()["file_list"][0]["id"]
    w.write("outputs/small.csv", b"offence,count\ntheft,1\n")  # changed after submission
    # a cross-site post with the checker's cookie is refused
    evil = chris.post(
        url + "/votes",
        headers={**HTML, "origin": "http://evil.example"},
        data={"file_id": fid, "decision": "approve"},
    )
    assert evil.status_code == 403
    # approving a failed file without a comment comes back with the reason
    bare = chris.post(url + "/votes", headers=HTML, data={"file_id": fid, "decision": "approve"})
    assert "approving it needs a comment" in bare.text and bare.url.fragment == f"file-{fid}"
    for checker in (chris, kim):
        voted = checker.post(
            url + "/votes",
            headers=HTML,
            data={"file_id": fid, "decision": "approve", "comment": "offence counts, not persons"},
        )
        assert voted.status_code == 200 and "Vote recorded" in voted.text
    assert "now approved" in voted.text
    # the notebook sees the approval, but no release button; the browser does
    assert ">Release</button>" not in page(w, f"requests/{rid}", "srv-rita").text
    assert "from your own computer only" in page(w, f"requests/{rid}", "srv-rita").text
    approved = rita.get(url, headers=HTML)
    assert ">Release</button>" in approved.text and "offence counts, not persons" in approved.text
    released = rita.post(url + "/release", headers=HTML)
    assert "Released" in released.text and "Download the release" in released.text
    got = rita.get(url + "/download")
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert verify_bundle(got.content) == []
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        assert zf.read("files/outputs/small.csv") == original  # as submitted, not as changed
    # a colleague's browser cannot download it, and nor can a container
    assert browser(w, "t-nora").get(url + "/download", headers=HTML).status_code == 403
    assert page(w, f"requests/{rid}/download", "t-rita", inside=True).status_code == 403
    # the project's next request shows this release to the checkers for context
    nxt = w.submitted(("outputs/next.csv", SAFE_CSV))
    context = page(w, f"requests/{nxt['id']}", "t-chris")
    assert "Earlier releases of reoffending" in context.text and "Offences" in context.text
    with tx() as session:
        assert audit.verify(session).ok


def test_changes_requested_and_resubmitted_through_the_pages(w: World) -> None:
    req = w.submitted()
    rid, fid = req["id"], req["file_list"][0]["id"]
    w.vote("chris", rid, fid, "request_changes", comment="round to tens")
    w.vote("kim", rid, fid, comment="ok")
    shown = page(w, f"requests/{rid}", "t-rita")
    assert "round to tens" in shown.text and "Add or replace a file" in shown.text
    w.write("outputs/table.csv", b"region,n\nnorth,120\nsouth,150\neast,200\n")
    added = post(
        w,
        f"requests/{rid}/files",
        "t-rita",
        {"path": "outputs/table.csv", "justification": "rounded"},
    )
    assert "outputs/table.csv added." in follow(w, added, "t-rita").text
    resub = follow(w, post(w, f"requests/{rid}/submit", "t-rita", {"comment": "rounded"}), "t-rita")
    assert "resubmitted" in text_of(resub)
    assert "Earlier rounds" in resub.text and "Round 1" in resub.text
    assert "round to tens" in resub.text  # round 1's decision stays in the history
    withdrawn = follow(w, post(w, f"requests/{rid}/withdraw", "t-rita", {}), "t-rita")
    assert "Request withdrawn." in withdrawn.text
