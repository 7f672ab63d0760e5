"""Judged previews (a viewer who may not read the file's bytes): no more than one output's
limits of any part, a budget for a whole notebook, figures only as coarse previews."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from typing import Any

import nbformat
from PIL import Image

from tests.airlock.test_preview import PNG_1PX, XSS, assert_inert, table
from tests.support.images import chart, chunk, chunk_types, with_chunks
from trenv.airlock.checks.models import FileCheck
from trenv.airlock.preview import (
    FIGURE_FOR_CHECKERS,
    NOTEBOOK_OUTPUTS,
    judge_document,
    judge_table,
    notebook_html,
    table_preview,
    text_html,
)
from trenv.judge.image import KEPT_CHUNKS
from trenv.judge.text import TextLimits, judge_text

LIMITS = TextLimits()  # the default policy's: 48 rows, 1,024 encoded characters
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def nb(*cells: nbformat.NotebookNode) -> bytes:
    book = nbformat.v4.new_notebook()
    book.cells = list(cells)
    return nbformat.writes(book).encode()


def code(source: str, *outputs: dict[str, Any]) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, outputs=[nbformat.from_dict(o) for o in outputs])


def stream(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text}


def image(mime: str, raw: bytes) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {mime: base64.b64encode(raw).decode(), "text/plain": "<Figure>"},
    }


def rows(n: int, start: int = 0) -> str:
    return "".join(f"p{i:05d},theft,{2015 + i % 10},{i * 7}\n" for i in range(start, start + n))


def rules(html: str) -> list[str]:
    return re.findall(r'data-rule="([^"]+)"', html)


def test_without_limits_a_notebook_is_shown_as_it_is() -> None:
    data = nb(code("print(df)", stream(rows(2000)), image("image/png", PNG_1PX)))
    html = notebook_html(data)
    assert "p01999,theft" in html and base64.b64encode(PNG_1PX).decode() in html
    assert rules(html) == []


def test_outputs_over_the_limits_become_markers_and_figures_coarse_previews() -> None:
    figure = with_chunks(chart("bar"), chunk(b"tEXt", b"Comment\x00" + rows(40).encode()))
    blob = base64.b64encode(bytes(range(256)) * 8).decode()
    data = nb(
        code(
            "print(df)",
            stream(rows(2000)),
            stream(rows(5)),
            {"output_type": "display_data", "metadata": {}, "data": {"text/plain": blob}},
            # not rendered, judged all the same (as the Lab does)
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/html": "<tr><td>1</td></tr>" * 60, "text/plain": "frame"},
            },
            image("image/png", figure),
            image("image/jpeg", JPEG),
            {
                "output_type": "error",
                "ename": "E",
                "evalue": "e",
                "traceback": ["\x1b[31m" + XSS + "\x1b[0m"] * 200,
            },
        )
    )
    html = notebook_html(data, limits=LIMITS)
    assert_inert(html)
    assert rules(html) == ["table-rows", "blob", "table-rows"]
    assert "p01999" not in html and "p00004,theft" in html  # the small output is shown
    assert blob[:100] not in html and "frame" not in html
    assert base64.b64encode(figure).decode()[:200] not in html
    assert base64.b64encode(JPEG).decode() not in html and FIGURE_FOR_CHECKERS in html
    (uri,) = re.findall(r'<img class="coarse" src="data:image/png;base64,([^"]+)"', html)
    preview = base64.b64decode(uri)
    assert set(chunk_types(preview)) <= KEPT_CHUNKS and b"p00001" not in preview
    assert max(Image.open(io.BytesIO(preview)).size) <= 480
    assert "&lt;script&gt;" in html  # the traceback: its colours are not encoded data


def test_a_figure_that_does_not_decode_is_a_note() -> None:
    broken = PNG_1PX[:40] + b"\x00" * 20  # a PNG's magic, no picture
    html = notebook_html(nb(code("fig", image("image/png", broken))), limits=LIMITS)
    assert "data:image" not in html and FIGURE_FOR_CHECKERS in html


def test_attachments_are_coarse_previews_and_sources_are_judged() -> None:
    md = nbformat.v4.new_markdown_cell("![chart](attachment:c.png)")
    md["attachments"] = {"c.png": {"image/png": base64.b64encode(chart("line")).decode()}}
    smuggled = nbformat.v4.new_markdown_cell("# Appendix\n\n" + rows(500))
    blob = base64.b64encode(bytes(range(256)) * 8).decode()
    encoded = code(f"payload = '{blob}'")
    # Ordinary code with a comma on every line is no table (judge_text would say it was).
    module = "\n".join(f"total_{i} = add(total_{i - 1}, {i})" for i in range(1, 300))
    assert judge_text(module, LIMITS) is not None
    data = nb(md, smuggled, encoded, code(module))
    html = notebook_html(data, limits=LIMITS)
    assert rules(html) == ["table-rows", "blob"]
    assert "p00400" not in html and blob[:100] not in html
    assert "total_299 = add(total_298, 299)" in html
    assert base64.b64encode(chart("line")).decode()[:200] not in html
    assert len(re.findall(r'<img class="coarse" src="data:image/png;base64,', html)) == 1
    assert 'alt="preview of chart"' in html


def test_a_whole_notebook_shows_at_most_a_few_outputs_worth() -> None:
    # Forty rows an output is within one output's limits; the notebook's budget is
    # NOTEBOOK_OUTPUTS times 48 rows, so the fifth such output and later ones are markers.
    outputs = [stream(rows(40, start=1000 * k)) for k in range(8)]
    html = notebook_html(nb(code("for part in parts: print(part)", *outputs)), limits=LIMITS)
    shown = NOTEBOOK_OUTPUTS * LIMITS.max_table_rows // 40
    assert rules(html) == ["notebook-total"] * (8 - shown)
    assert f"p{1000 * (shown - 1):05d},theft" in html and f"p{1000 * shown:05d}" not in html
    assert "already show as much as its preview may" in html
    # ...and characters add up too: eight outputs of 60,000 characters of prose
    prose = "The rate fell over the period, as the figure shows. " * 1150
    html = notebook_html(nb(code("report()", *[stream(prose)] * 8)), limits=LIMITS)
    assert len(prose) <= LIMITS.max_chars
    assert rules(html) == ["notebook-total"] * (8 - NOTEBOOK_OUTPUTS)


def test_text_files_are_judged_whole() -> None:
    # base64 wrapped shorter than a run of encoded data is still encoded data
    blob = base64.b64encode(bytes(range(256)) * 16).decode()
    wrapped = "\n".join(blob[i : i + 60] for i in range(0, len(blob), 60))
    assert judge_text(wrapped, LIMITS) is None and judge_document(wrapped, LIMITS) is not None
    html = text_html(wrapped.encode(), limits=LIMITS)
    assert blob[:60] not in html and "This text file is not shown here" in html
    assert 'data-rule="blob"' in html and "reviewing the request see it" in html
    csv = text_html(("a,b\n" + rows(300)).encode(), markdown=True, limits=LIMITS)
    assert "This document is not shown here" in csv and 'data-rule="table-rows"' in csv
    # wrapped prose has a comma on many lines and is shown
    prose = "\n".join(f"Line {i} of the report, which reads on" for i in range(200))
    assert "Line 199 of the report" in text_html(prose.encode(), limits=LIMITS)
    assert blob[:60] in text_html(wrapped.encode())  # unjudged: as it is


def frozen_table(text: str) -> Any:
    f = table("outputs/t.csv", text)
    check = FileCheck(kind="table", status="pass", header_rows=1, summary="", findings=[])
    return table_preview(f, check, max_rows=LIMITS.max_table_rows)


def test_table_cells_are_judged() -> None:
    assert judge_table(frozen_table("case,offence,year,n\n" + rows(7000)), LIMITS) is None
    blob = base64.b64encode(hashlib.sha512(b"x").digest() * 40).decode()
    cut = judge_table(frozen_table(f"name,file\nx,{blob}\n"), LIMITS)
    assert cut is not None and cut.rule == "blob"
    # a whole CSV inside one cell is rows all the same
    inner = '"' + rows(300) + '"'
    cut = judge_table(frozen_table(f"name,file\nx,{inner}\n"), LIMITS)
    assert cut is not None and cut.rule == "table-rows"
