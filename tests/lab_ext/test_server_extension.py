"""The server extension in a real jupyter_server (no hub): what it refuses, what still
works, the Outputs endpoints, and that requests reach the trenv API with the server's token.

A stand-in for the trenv web API (tests.support.lab_server) records what it is sent, so the
test can tell whose token the extension forwards (the server's, never the browser's).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pandas as pd
import pytest
import requests

from tests.support.lab_server import SERVER_TOKEN, Lab, running_lab
from tests.support.lab_server import auth as _auth


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    work, data = root / "work", root / "data"
    for d in (work, data):
        d.mkdir()
    (data / "people.parquet").write_bytes(b"PAR1" + b"\x00" * 100)
    (data / "readme.txt").write_text("codebook\n")
    (work / "to-data.txt").symlink_to(data / "people.parquet")
    (work / "data-dir").symlink_to(data)
    (work / "small.csv").write_text("a,b\n1,2\n")
    (work / "big.csv").write_text("a,b\n" + "1,2\n" * 400_000)  # 1.6 MB
    (work / "renamed.txt").write_bytes(b"PAR1" + b"\x00" * (2 * 1024 * 1024))
    (work / "notes.md").write_text("# notes\n")
    with running_lab(root) as running:
        yield running


def _refused(reply: requests.Response, reason: str) -> None:
    assert reply.status_code == 403, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert body["reason"] == reason and "airlock" in body["export"], body


@pytest.mark.parametrize(
    "path",
    [
        "files/small.csv",
        "files/notes.md?download=1",
        "view/notes.md",
        "nbconvert/html/analysis.ipynb?download=true",
        "nbconvert/script/analysis.ipynb",
        "api/contents/small.csv?download=1",
    ],
)
def test_downloads_are_refused(lab: Lab, path: str) -> None:
    _refused(lab.get(path), "download")


def test_nbconvert_post_is_refused_without_an_xsrf_error(lab: Lab) -> None:
    reply = requests.post(f"{lab.url}/nbconvert/html", headers=_auth(), json={}, timeout=30)
    _refused(reply, "download")


@pytest.mark.parametrize(
    "path",
    [
        "api/contents/to-data.txt",  # a symlink into /data, under a harmless name
        "api/contents/to-data.txt?type=file&format=base64",
        "api/contents/data-dir/readme.txt?type=file&format=text",
        "api/contents/big.csv?type=file&format=text",
        "api/contents/renamed.txt?content=1",  # parquet bytes under a .txt name
    ],
)
def test_raw_reads_of_data_are_refused(lab: Lab, path: str) -> None:
    _refused(lab.get(path), "data-read")


def test_ordinary_reads_still_work(lab: Lab) -> None:
    assert lab.get("api/contents/small.csv?type=file&format=text").json()["content"] == "a,b\n1,2\n"
    assert lab.get("api/contents/notes.md").status_code == 200
    listing = lab.get("api/contents/data-dir").json()  # names of the data: a listing, not data
    assert {item["name"] for item in listing["content"]} == {"people.parquet", "readme.txt"}
    assert lab.get("api/contents/to-data.txt?content=0").status_code == 200
    assert lab.get("lab").status_code in (200, 404)  # no JupyterLab on the host: not refused


def test_notebook_save_works_and_oversized_uploads_are_refused(lab: Lab) -> None:
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    saved = lab.put("api/contents/analysis.ipynb", {"type": "notebook", "content": notebook})
    assert saved.status_code == 201, saved.text
    assert lab.get("api/contents/analysis.ipynb").json()["content"]["nbformat"] == 4
    # The routes behind the contents route (checkpoints, trust) are jupyter_server's still.
    assert lab.get("api/contents/analysis.ipynb/checkpoints").json()[0]["id"] == "checkpoint"

    big = base64.b64encode(b"x" * (11 * 1024 * 1024)).decode()
    model = {"type": "file", "format": "base64", "content": big}
    _refused(lab.put("api/contents/incoming.bin", model), "upload-size")
    assert not (lab.work / "incoming.bin").exists()

    # A chunked upload: each chunk is small, the file would not be.
    chunk = base64.b64encode(b"y" * (1024 * 1024)).decode()
    for number in range(1, 11):
        reply = lab.put("api/contents/chunked.bin", {**model, "content": chunk, "chunk": number})
        assert reply.status_code in (200, 201), (number, reply.text)
    _refused(
        lab.put("api/contents/chunked.bin", {**model, "content": chunk, "chunk": -1}), "upload-size"
    )


def test_config_comes_from_the_projects_policy(lab: Lab) -> None:
    config = lab.get("trenv/config").json()
    assert config["project"] == "proj-a" and config["policy"].startswith("sacro")
    assert config["copy_limit_chars"] == 500 and config["max_upload_bytes"] == 10 * 1024 * 1024


def test_outputs_lists_saved_outputs_with_their_checks(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trenv.lab as tre

    monkeypatch.setenv("TRENV_WORKSPACE", str(lab.work))
    people = pd.DataFrame(
        {
            "person": [f"p{i}" for i in range(63)],
            "region": ["noord"] * 60 + ["zuid"] * 3,
            "outcome": ["a", "b"] * 31 + ["a"],
        }
    )
    tre.save(tre.crosstab(people.region, people.outcome, contributor=people.person), "by_region")
    listed = {o["name"]: o for o in lab.get("trenv/outputs").json()["outputs"]}
    table = listed["by_region"]
    assert table["status"] == "fail" and table["files"] == ["outputs/by_region.csv"]
    assert any(r["rule"] == "threshold" for r in table["reasons"]), table["reasons"]

    # Edited after its check: the panel says so (the airlock would refuse it anyway).
    with (lab.work / "outputs" / "by_region.csv").open("a") as handle:
        handle.write("smuggled,1,1\n")
    listed = {o["name"]: o for o in lab.get("trenv/outputs").json()["outputs"]}
    assert any(r["rule"] == "changed" for r in listed["by_region"]["reasons"])


def test_requests_and_budget_are_forwarded_with_the_servers_token(lab: Lab) -> None:
    lab.api.seen.clear()
    assert lab.get("trenv/requests").json() == []
    assert lab.get("trenv/budget").json()["budgets"][0]["rho_remaining"] == 0.75
    reply = requests.post(
        f"{lab.url}/trenv/requests",
        headers=_auth(),
        timeout=30,
        json={
            "title": "Table 2",
            "project": "proj-b",  # the browser cannot choose the project
            "files": [{"path": "outputs/by_region.csv", "justification": "report table"}],
        },
    )
    assert reply.status_code == 201 and reply.json()["id"] == 7, reply.text
    assert [s["path"] for s in lab.api.seen] == [
        "/services/trenv/api/airlock/requests",
        "/services/trenv/api/dp/budget",
        "/services/trenv/api/airlock/requests",
    ]
    assert {s["auth"] for s in lab.api.seen} == {f"token {SERVER_TOKEN}"}
    assert "project" not in lab.api.seen[-1]["body"] and lab.api.seen[-1]["body"]["submit"]

    bad = requests.post(
        f"{lab.url}/trenv/requests", headers=_auth(), json={"title": "x"}, timeout=30
    )
    assert bad.status_code == 400 and "output" in bad.json()["problem"]
