"""The request page's previews are no way out in bulk: the requester and the project's members
see what the project's output limits let one output show; the checkers reviewing a submitted
request see the file (trenv.web.airlock.preview, trenv.airlock.preview)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import nbformat
import numpy as np
import pytest
from PIL import Image

from tests.support.images import (
    chart,
    chunk,
    chunk_types,
    packed_png,
    parquet_file,
    with_chunks,
)
from tests.web.airlock_world import Tx, World, auth, build_world
from trenv.config import Settings
from trenv.judge.image import KEPT_CHUNKS

P = "/services/trenv/"
HTML = {"accept": "text/html"}
BIG_ROWS = 7021
CHECKERS_SEE = "The checkers reviewing the request see"


@pytest.fixture
def w(settings: Settings, tx: Tx, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    yield from build_world(settings, tx, monkeypatch)


def page(w: World, request_id: int, token: str) -> httpx.Response:
    reply = w.outside.get(f"{P}requests/{request_id}", headers={**HTML, **auth(token)})
    assert reply.status_code == 200, reply.text
    return reply


def draft(w: World, *files: tuple[str, bytes]) -> dict[str, Any]:
    """A draft request of rita's holding ``files`` (never submitted)."""
    for rel, data in files:
        w.write(rel, data)
    reply = w.create(files=[{"path": rel, "justification": "for the paper"} for rel, _ in files])
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    assert body["state"] == "draft"
    return body


def preview_rows(text: str) -> int:
    """Data rows of the (one) table preview on a page."""
    table = re.search(r'<table class="data compact preview-table">(.*?)</table>', text, re.S)
    assert table is not None
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(1), re.S)
    assert body is not None
    return body.group(1).count("<tr>")


def data_uris(text: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def big_csv() -> bytes:
    lines = ["case,offence,year,sentence_days"]
    lines += [
        f"c{i:05d},{('theft', 'fraud', 'assault')[i % 3]},{2015 + i % 10},{17 + i}"
        for i in range(BIG_ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


# --- tables -------------------------------------------------------------------------------


def test_the_requester_of_a_draft_sees_48_rows_of_a_big_table(w: World) -> None:
    req = draft(w, ("outputs/cases.csv", big_csv()))
    mine = page(w, req["id"], "t-rita")
    assert preview_rows(mine.text) == 48
    assert ">c00047<" in mine.text  # the 48th row is shown
    assert ">c00048<" not in mine.text and ">c00299<" not in mine.text
    assert f"Showing 48 of {BIG_ROWS:,} rows." in mine.text
    assert CHECKERS_SEE in mine.text and "only in a released bundle" in mine.text


def test_checkers_reviewing_see_300_rows_members_48(w: World) -> None:
    req = w.submitted(("outputs/cases.csv", big_csv()))
    checker = page(w, req["id"], "t-chris")
    assert preview_rows(checker.text) == 300
    assert ">c00299<" in checker.text and "Showing 48 of" not in checker.text
    for token in ("t-rita", "t-nora", "t-pete"):  # requester, colleague, checker in the project
        shown = page(w, req["id"], token)
        assert preview_rows(shown.text) == 48, token
        assert ">c00048<" not in shown.text and f"Showing 48 of {BIG_ROWS:,} rows." in shown.text


# --- text files ---------------------------------------------------------------------------


def test_a_base64_text_file_goes_to_the_reviewing_checker_only(w: World) -> None:
    encoded = base64.encodebytes(parquet_file(300)).decode()  # 76 characters a line
    assert len(encoded) > 4000
    secret = encoded[1500:1600]
    req = w.submitted(("outputs/notes.txt", encoded.encode()))
    assert secret in page(w, req["id"], "t-chris").text
    for token in ("t-rita", "t-nora"):
        shown = page(w, req["id"], token)
        assert secret not in shown.text and encoded[:60] not in shown.text
        assert "This text file is not shown here" in shown.text
        assert "look like encoded data" in shown.text and CHECKERS_SEE in shown.text


# --- notebooks ----------------------------------------------------------------------------


def notebook(*outputs: dict[str, Any], markdown: str = "# Results") -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(markdown),
        nbformat.v4.new_code_cell(
            "df.head(10)\nfig", outputs=[nbformat.from_dict(o) for o in outputs]
        ),
    ]
    return nbformat.writes(nb).encode()


def png_output(png: bytes) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"},
    }


def test_a_notebook_with_rows_and_a_smuggling_figure_is_judged(w: World) -> None:
    rows = "".join(f"p{i:05d},theft,{2015 + i % 10},{i * 7}\n" for i in range(2000))
    payload = parquet_file()
    smuggler = with_chunks(
        packed_png(payload), chunk(b"tEXt", b"Comment\x00" + rows[:1800].encode())
    )
    data = notebook(
        {"output_type": "stream", "name": "stdout", "text": "case,offence,year,n\n" + rows},
        png_output(smuggler),
    )
    original = base64.b64encode(smuggler).decode()
    req = draft(w, ("outputs/analysis.ipynb", data))
    mine = page(w, req["id"], "t-rita")
    assert "p01234,theft" not in mine.text and "p00000,theft" not in mine.text
    assert 'data-rule="table-rows"' in mine.text and "This output is not shown here" in mine.text
    for at in (0, 200, len(original) // 2, len(original) - 200):
        assert original[at : at + 100] not in mine.text
    (preview,) = data_uris(mine.text)
    assert set(chunk_types(preview)) <= KEPT_CHUNKS
    img = Image.open(io.BytesIO(preview))
    assert max(img.size) <= 480 and len(img.getcolors() or []) <= 16
    assert payload[100:132] not in np.asarray(img.convert("RGB")).tobytes()
    assert 'class="coarse"' in mine.text and 'class="notebook"' in mine.text
    # the checkers reviewing the same notebook, submitted, see it as it is
    req = w.submitted(("outputs/analysis.ipynb", data))
    checker = page(w, req["id"], "t-chris")
    assert "p01234,theft" in checker.text and original[200:300] in checker.text


def test_an_ordinary_notebook_still_previews_for_the_requester(w: World) -> None:
    frame = "   offence  year    n\n" + "".join(
        f"{i}  {('theft', 'fraud')[i % 2]}  {2015 + i}  {40 + i}\n" for i in range(10)
    )
    html_frame = "<table><tr><th>offence</th></tr>" + "<tr><td>theft</td></tr>" * 10 + "</table>"
    figure = chart("bar")
    data = notebook(
        {
            "output_type": "execute_result",
            "execution_count": 1,
            "metadata": {},
            "data": {"text/plain": frame, "text/html": html_frame},
        },
        png_output(figure),
        markdown="# Results\n\nReoffending, by offence, fell in 2020; see the figure below.",
    )
    notes = b"# Notes\n\nThe model, fitted on 2015-2022, explains most of the variation.\n"
    req = draft(w, ("outputs/analysis.ipynb", data), ("outputs/notes.md", notes))
    mine = page(w, req["id"], "t-rita")
    assert "withheld" not in mine.text and "not shown here" not in mine.text
    assert "9  fraud  2024  49" in mine.text and "<h1>Results</h1>" in mine.text
    assert "<h1>Notes</h1>" in mine.text and "explains most of the variation" in mine.text
    # the figure as a coarse preview drawn by the server, not the figure's own bytes
    assert base64.b64encode(figure).decode()[200:300] not in mine.text
    (preview,) = data_uris(mine.text)
    assert Image.open(io.BytesIO(preview)).width <= 480
    assert 'class="coarse"' in mine.text
