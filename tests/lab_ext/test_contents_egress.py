"""The contents API in a real jupyter_server with the extension and its egress meter: reads
judged by content wherever the file sits, notebooks opened with data outputs withheld and
saved without losing them, every refusal and truncation audited, every byte counted, and
the day's upload cap.

The stand-in trenv API (tests.support.lab_server) answers the meter as the real one does and
records its reports, so each test checks both sides: what the browser got and what the
audit trail and the meter were told.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import sqlite3
import zipfile
from collections.abc import Iterator

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest
import requests

from tests.support.lab_server import Lab, MiB, running_lab

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROWS = 300


def people() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "person": [f"{rng.integers(0, 2**62):016x}{rng.integers(0, 2**62):016x}"
                       for _ in range(ROWS)],
            "age": rng.integers(18, 90, ROWS),
            "region": rng.choice(["noord", "zuid", "oost"], ROWS),
            "offence": rng.choice(["theft", "fraud", "assault"], ROWS),
        }
    )  # fmt: skip


PEOPLE = people()


def leaked(text: str) -> int:
    """Rows of the dataset readable in ``text``: pseudonyms in clear."""
    return sum(p in text for p in PEOPLE.person)


def notebook_with_a_dump() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("df.groupby('region').size()", execution_count=1)
    first.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": PEOPLE.groupby("region").size().to_string()},
            execution_count=1,
        )
    ]
    dump = nbformat.v4.new_code_cell("print(df.to_string())", execution_count=2)
    dump.outputs = [nbformat.v4.new_output("stream", name="stdout", text=PEOPLE.to_string())]
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar(["a", "b"], [3, 4])
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    figure = nbformat.v4.new_code_cell("plot()", execution_count=3)
    figure.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(png.getvalue()).decode(), "text/plain": "<Fig>"},
        )
    ]
    nb.cells = [first, dump, figure]
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("egress")
    work = root / "work"
    (work / "hidden" / "deeper").mkdir(parents=True)
    PEOPLE.to_parquet(work / "copy.parquet")  # well under 1 MiB
    (work / "hidden" / "deeper" / "notes.txt").write_bytes((work / "copy.parquet").read_bytes())
    PEOPLE.to_csv(work / "all.csv", index=False)
    PEOPLE.to_csv(work / "all.txt", sep="\t", index=False)
    (work / "b64.txt").write_bytes(base64.b64encode((work / "copy.parquet").read_bytes()))
    (work / "hex.md").write_text((work / "copy.parquet").read_bytes().hex())
    PEOPLE.to_json(work / "some.json", orient="records")
    PEOPLE.to_excel(work / "sheet.xlsx")
    (work / "frame.pkl").write_bytes(pickle.dumps(PEOPLE))
    with sqlite3.connect(work / "db.sqlite") as con:
        PEOPLE.to_sql("people", con)
    with zipfile.ZipFile(work / "bundle.zip", "w") as archive:
        archive.writestr("people.csv", PEOPLE.to_csv())
    summary = PEOPLE.groupby("region").age.agg(["count", "mean"]).round(1)
    summary.to_csv(work / "by_region.csv")
    (work / "notes.md").write_text("# Notes\n\nReoffending by region, first look.\n")
    (work / "analysis.py").write_text(
        "import pandas as pd\n\n\ndef load(path: str) -> pd.DataFrame:\n"
        "    return pd.read_parquet(path)\n"
    )
    (work / "settings.json").write_text(json.dumps({"theme": "dark", "fontSize": 13}, indent=2))
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 2, 3])
    fig.savefig(work / "figure.png")
    plt.close(fig)
    (work / "big-notes.txt").write_text("a line of prose, nothing more\n" * 50_000)  # 1.5 MB
    nbformat.write(notebook_with_a_dump(), work / "analysis.ipynb")
    with running_lab(root) as running:
        yield running


def refused(reply: requests.Response, reason: str = "data-read") -> dict:
    assert reply.status_code == 403, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert body["reason"] == reason and "airlock" in body["export"], body
    return body


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("copy.parquet", "Parquet"),
        ("hidden/deeper/notes.txt", "Parquet"),  # parquet bytes under an innocent name
        ("all.csv", "tabular data"),
        ("all.txt", "tabular data"),
        ("b64.txt", "encoded data"),
        ("hex.md", "encoded data"),
        ("some.json", "tabular data"),
        ("sheet.xlsx", "Excel"),
        ("frame.pkl", "pickle"),
        ("db.sqlite", "SQLite"),
        ("bundle.zip", "zip"),
    ],
)
@pytest.mark.parametrize(
    "query",
    ["type=file&format=text", "type=file&format=base64", "format=base64", "", "content=1"],
)
def test_copies_of_data_are_refused_on_read(lab: Lab, path: str, what: str, query: str) -> None:
    reply = lab.get(f"api/contents/{path}?{query}")
    body = refused(reply)
    assert what in body["message"] and path in body["message"], body["message"]
    assert "notebook" in body["message"]  # the way out
    assert leaked(reply.text) == 0
    if query != "type=file&format=base64":
        return  # the audit event: once per file is enough (the meter reports every ~2 s)
    events = lab.api.wait_for(
        lambda: [e for e in lab.api.events("data-read") if e.get("path") == path]
    )
    assert events, lab.api.events()
    # The audit trail says what was refused, never what was in it.
    assert all(leaked(json.dumps(e)) == 0 and "fraud" not in json.dumps(e) for e in events)


def test_ordinary_files_open_and_are_counted(lab: Lab) -> None:
    text_before, image_before = lab.api.counted("text"), lab.api.counted("image")
    expected = {
        "by_region.csv": (lab.work / "by_region.csv").read_text(),
        "notes.md": (lab.work / "notes.md").read_text(),
        "analysis.py": (lab.work / "analysis.py").read_text(),
        "settings.json": (lab.work / "settings.json").read_text(),
    }
    sent = 0
    for path, content in expected.items():
        reply = lab.get(f"api/contents/{path}?type=file&format=text")
        assert reply.status_code == 200, (path, reply.text[:300])
        assert reply.json()["content"] == content
        sent += len(reply.content)
    figure = lab.get("api/contents/figure.png?type=file&format=base64")
    assert figure.status_code == 200
    assert base64.b64decode(figure.json()["content"]) == (lab.work / "figure.png").read_bytes()
    assert lab.api.wait_for(lambda: lab.api.counted("text") - text_before >= sent)
    assert lab.api.counted("text") - text_before == sent  # every byte, once
    assert lab.api.wait_for(lambda: lab.api.counted("image") - image_before == len(figure.content))
    # Listings and metadata stay allowed.
    listing = lab.get("api/contents/hidden/deeper").json()
    assert [i["name"] for i in listing["content"]] == ["notes.txt"]
    assert lab.get("api/contents/copy.parquet?content=0").status_code == 200


def test_a_text_file_too_large_to_show_is_refused(lab: Lab) -> None:
    body = refused(lab.get("api/contents/big-notes.txt?type=file&format=text"))
    assert "too large to show" in body["message"] and "1.4 MB" in body["message"]


def test_a_notebook_opens_with_its_data_output_withheld(lab: Lab) -> None:
    on_disk = (lab.work / "analysis.ipynb").read_bytes()
    image_before = lab.api.counted("image")
    reply = lab.get("api/contents/analysis.ipynb?type=notebook&content=1")
    assert reply.status_code == 200, reply.text[:300]
    assert leaked(reply.text) == 0
    cells = reply.json()["content"]["cells"]
    assert "noord" in cells[0]["outputs"][0]["data"]["text/plain"]  # the aggregate: shown
    marker = cells[1]["outputs"][0]
    assert "withheld" in marker["data"]["text/plain"] and "rows" in marker["data"]["text/plain"]
    assert "image/png" in cells[2]["outputs"][0]["data"]  # the figure: kept
    assert reply.json()["content"]["metadata"]["trenv_withheld"]["outputs"] == 1
    # The file is untouched, and the same holds without ?type=notebook.
    assert (lab.work / "analysis.ipynb").read_bytes() == on_disk
    assert leaked(lab.get("api/contents/analysis.ipynb").text) == 0
    events = lab.api.wait_for(lambda: lab.api.events("notebook-output"))
    assert events[0]["path"] == "analysis.ipynb" and events[0]["outputs"] == 1
    assert events[0]["rule"] == "table-rows" and leaked(json.dumps(events)) == 0
    # The figure is counted as an image, the rest as text.
    assert lab.api.wait_for(lambda: lab.api.counted("image") > image_before)


def test_a_notebook_read_as_a_plain_file_is_refused(lab: Lab) -> None:
    body = refused(lab.get("api/contents/analysis.ipynb?type=file&format=text"))
    assert "as a notebook" in body["message"]


def test_saving_the_truncated_notebook_keeps_the_real_outputs(lab: Lab) -> None:
    shown = lab.get("api/contents/analysis.ipynb?type=notebook").json()["content"]
    shown["cells"][0]["source"] = "df.groupby('region').size()  # by region"
    shown["cells"].append(nbformat.v4.new_markdown_cell("More regions than expected."))
    uploads = len(lab.api.uploads())
    saved = lab.put("api/contents/analysis.ipynb", {"type": "notebook", "content": shown})
    assert saved.status_code == 200, saved.text[:300]
    on_disk = nbformat.read(lab.work / "analysis.ipynb", as_version=4)
    assert on_disk.cells[1].outputs[0]["text"] == PEOPLE.to_string()  # put back
    assert on_disk.cells[0].source.endswith("# by region")
    assert on_disk.cells[3].source == "More regions than expected."
    assert "trenv_withheld" not in on_disk.metadata
    # Only the edited and the new cell count against the day's uploads, not the whole file.
    counted = lab.api.uploads()[uploads:]
    assert len(counted) == 1 and 0 < counted[0] < 1000, counted
    # Opened again, it is withheld again.
    assert leaked(lab.get("api/contents/analysis.ipynb").text) == 0


def test_uploads_have_a_day_cap(lab: Lab) -> None:
    lab.api.uploaded, lab.api.upload_limit = 0, 20 * MiB
    nine = base64.b64encode(b"z" * (9 * MiB)).decode()
    model = {"type": "file", "format": "base64", "content": nine}
    for name in ("one.bin", "two.bin"):
        assert lab.put(f"api/contents/{name}", model).status_code == 201
    body = refused(lab.put("api/contents/three.bin", model), "upload-day")
    assert "per day" in body["message"] and "vault" in body["message"]
    assert not (lab.work / "three.bin").exists()
    assert lab.api.wait_for(lambda: lab.api.events("upload-day"))[0]["path"] == "three.bin"

    # A chunked upload counts each chunk as it comes.
    lab.api.uploaded = 0
    chunk = base64.b64encode(b"y" * MiB).decode()
    before = len(lab.api.uploads())
    for number in (1, 2, 3, -1):
        reply = lab.put("api/contents/chunked.bin", {**model, "content": chunk, "chunk": number})
        assert reply.status_code in (200, 201), reply.text[:300]
    assert lab.api.uploads()[before:] == [MiB] * 4
    assert (lab.work / "chunked.bin").stat().st_size == 4 * MiB
    lab.api.uploaded, lab.api.upload_limit = 0, 50 * MiB


def test_reads_stop_when_the_hours_text_is_used_up(lab: Lab) -> None:
    lab.api.text_stopped = True
    try:
        # The next report of the meter brings the server's answer; reads go on until then.
        replies = lab.api.wait_for(
            lambda: [r for r in [lab.get("api/contents/notes.md")] if r.status_code == 403]
        )
        assert replies, "reads were not stopped"
        body = refused(replies[0], "egress-stopped")
        assert "stopped for this hour" in body["message"]
        refused(lab.get("api/contents/analysis.ipynb"), "egress-stopped")
        assert lab.get("api/contents/").status_code == 200  # listings stay
    finally:
        lab.api.text_stopped = False
    assert lab.api.wait_for(lambda: lab.get("api/contents/notes.md").status_code == 200)
