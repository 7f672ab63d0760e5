"""Previews must be inert: whatever a researcher writes into a file or its name, no script,
event handler, raw HTML or remote fetch reaches the checker's browser."""

from __future__ import annotations

import base64
import hashlib
import re

import nbformat

from trenv.airlock.checks.models import FileCheck, Finding
from trenv.airlock.formats import check_file
from trenv.airlock.intake import FrozenFile
from trenv.airlock.preview import notebook_html, table_preview, text_html

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def assert_inert(html: str) -> None:
    lowered = html.lower()
    assert "<script" not in lowered
    assert not re.search(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", lowered)
    assert not re.search(r"<[^>]+\son\w+\s*=", lowered), "event handler attribute in a tag"
    assert "<iframe" not in lowered and "<svg" not in lowered and "<object" not in lowered
    for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', html):
        assert src.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")), src


def table(path: str, text: str) -> FrozenFile:
    data = text.encode()
    return FrozenFile(path, data, hashlib.sha256(data).hexdigest(), len(data), "text/csv", "table")


def test_table_preview_flags_cells_and_escapes_everything() -> None:
    quoted = '"' + XSS.replace('"', '""') + '"'
    f = table(f"outputs/{XSS}.csv", f"region,n\n{quoted},120\nsouth,4\n")
    check = check_file(f, project="p", policy="trenv-default")
    preview = table_preview(f, check)
    assert preview.columns == ["region", "n"]
    assert preview.rows == [[XSS, "120"], ["south", "4"]]
    assert list(preview.flags) == [(1, 1)]
    assert "small-counts" in preview.flags[(1, 1)][0]
    html = preview.html()
    assert_inert(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="flagged"' in html


def test_table_preview_multilevel_header_and_truncation() -> None:
    text = "sex,f,m\noffence,theft,theft\nregion,,\n" + "".join(
        f"r{i},{i + 10}.0,{i + 20}.0\n" for i in range(30)
    )
    f = table("outputs/t.csv", text)
    check = FileCheck(
        kind="table",
        status="fail",
        header_rows=3,
        summary="x",
        findings=[
            Finding(rule_id="recheck-threshold", status="fail", message="m", cells=[(0, 1)]),
            Finding(rule_id="ok", status="pass", message="fine", cells=[(0, 2)]),
            Finding(rule_id="late", status="fail", message="beyond", cells=[(25, 1)]),
        ],
    )
    p = table_preview(f, check, max_rows=10)
    assert p.header[0] == ["sex", "f", "m"] and len(p.header) == 3
    assert p.columns == ["sex / offence / region", "f / theft", "m / theft"]
    assert len(p.rows) == 10 and p.total_rows == 30 and p.truncated
    assert p.flags == {(0, 1): ["recheck-threshold: m"]}
    assert "Showing 10 of 30 rows" in p.html()


def test_markdown_and_text_are_inert() -> None:
    md = (
        f"# Title {XSS}\n\n<div onclick=alert(1)>raw</div>\n\n[click](javascript:alert(1))\n\n"
        "![tracker](https://evil.example/pixel.png)\n"
    )
    html = text_html(md.encode(), markdown=True)
    assert_inert(html)
    assert "evil.example/pixel.png" not in re.findall(r'src="([^"]*)"', html)
    assert "&lt;div onclick=alert(1)&gt;" in html
    plain = text_html(XSS.encode())
    assert_inert(plain)
    assert plain.startswith('<pre class="text">')


def nb(*cells: nbformat.NotebookNode) -> bytes:
    book = nbformat.v4.new_notebook()
    book.cells = list(cells)
    return nbformat.writes(book).encode()


def code(source: str, *outputs: dict) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, outputs=[nbformat.from_dict(o) for o in outputs])


def test_notebook_html_is_inert() -> None:
    png = base64.b64encode(PNG_1PX).decode()
    fake_png = base64.b64encode(b"<script>alert(1)</script>").decode()
    md = nbformat.v4.new_markdown_cell(
        f"{XSS}\n\n![a](attachment:a.png) ![b](attachment:b.png) [x](javascript:alert(3))"
    )
    md["attachments"] = {"a.png": {"image/png": png}, "b.png": {"image/png": fake_png}}
    data = nb(
        md,
        code(
            f"print('{XSS}')",
            {"output_type": "stream", "name": 'stdout" onmouseover="alert(1)', "text": XSS},
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/html": XSS, "text/plain": "frame as text"},
            },
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"application/javascript": "alert(1)", "text/plain": "<IPython js>"},
            },
            {"output_type": "display_data", "metadata": {}, "data": {"image/png": png}},
            {"output_type": "display_data", "metadata": {}, "data": {"image/png": fake_png}},
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/svg+xml": "<svg onload=alert(1)></svg>"},
            },
            {"output_type": "display_data", "metadata": {}, "data": {"text/markdown": XSS}},
            {
                "output_type": "error",
                "ename": "E",
                "evalue": XSS,
                "traceback": ["\x1b[31m" + XSS + "\x1b[0m"],
            },
        ),
        nbformat.v4.new_raw_cell(XSS),
    )
    html = notebook_html(data)
    assert_inert(html)
    assert "HTML output not rendered" in html
    assert "JavaScript output not rendered" in html
    assert "Image output not rendered" in html
    assert "frame as text" in html
    assert html.count("data:image/png;base64,") == 2  # the real attachment and output only
    assert "Invalid image/png" in html
    assert '<section class="nb-cell nb-code" id="cell-1">' in html
    assert "\x1b" not in html


def test_notebook_checks_and_preview_agree_on_cell_numbers() -> None:
    html_out = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"text/html": "<table><tr><td>1</td></tr></table>"},
    }
    data = nb(nbformat.v4.new_markdown_cell("intro"), code("df", html_out))
    f = FrozenFile(
        "n.ipynb",
        data,
        hashlib.sha256(data).hexdigest(),
        len(data),
        "application/x-ipynb+json",
        "notebook",
    )
    check = check_file(f, project="p", policy="trenv-default")
    (cell, _), *_ = next(x for x in check.findings if x.rule_id == "printed-table").cells
    assert f'id="cell-{cell}"' in notebook_html(data)
    assert "<table" not in notebook_html(data)


def test_a_saved_count_table_previews_as_integers(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    import trenv.lab as tre
    from trenv.airlock.intake import read_sidecar, read_workspace_file, sidecar_paths

    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("TRENV_POLICY", raising=False)
    spec = {("north", "f"): 30, ("north", "m"): 25, ("south", "f"): 20, ("south", "m"): 3}
    rows = [{"region": r, "sex": s} for (r, s), n in spec.items() for _ in range(n)]
    df = pd.DataFrame(rows).assign(pid=range(78))
    tre.save(tre.crosstab(df.region, df.sex, contributor=df.pid), "t")
    frozen = read_workspace_file(tmp_path, "outputs/t.csv")
    record = read_sidecar(tmp_path, sidecar_paths("outputs/t.csv")["record"])
    check = check_file(frozen, project="p", policy="trenv-default", record=record)
    preview = table_preview(frozen, check)
    assert preview.rows == [["north", "30", "25"], ["south", "20", ""]]
    assert "<td>30</td><td>25</td>" in preview.html()
