"""Safe previews of frozen files for the checkers' pages (server-rendered HTML, no scripts).

Everything in a requested file was written by untrusted code and is shown to a checker who is
logged in to the airlock, so every string is escaped with ``html.escape``; Markdown is
rendered by markdown-it with raw HTML disabled; images are shown only as PNG or JPEG
``data:`` URIs after their magic bytes are checked (and nothing is fetched from elsewhere);
HTML, SVG and JavaScript outputs of notebooks are never rendered, only noted.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from trenv.airlock.checks.grid import csv_rows, xlsx_sheets
from trenv.airlock.checks.models import FileCheck
from trenv.airlock.intake import FrozenFile, image_bytes

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SAFE_IMAGES = ("image/png", "image/jpeg")
# Names from the notebook that end up in class attributes: only known ones, never its text.
_STREAMS = ("stdout", "stderr")
_CELL_TYPES = ("markdown", "code", "raw")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class TablePreview:
    """A table as the checker sees it: header rows, data rows of strings, flagged cells."""

    path: str
    header: list[list[str]]
    rows: list[list[str]]
    flags: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    total_rows: int = 0
    truncated: bool = False

    @property
    def columns(self) -> list[str]:
        """One label per column: the header rows joined with " / " (empty parts left out)."""
        width = max((len(r) for r in [*self.header, *self.rows]), default=0)
        labels = []
        for j in range(width):
            parts = [r[j] for r in self.header if j < len(r) and r[j]]
            labels.append(" / ".join(parts))
        return labels

    def html(self) -> str:
        """The table as escaped HTML; flagged cells carry ``class="flagged"`` and their
        messages in ``title`` (no script needed to see why)."""
        out = [f'<table class="airlock-preview"><caption>{esc(self.path)}</caption><thead>']
        for row in self.header:
            out.append("<tr>" + "".join(f"<th>{esc(v)}</th>" for v in row) + "</tr>")
        out.append("</thead><tbody>")
        for i, row in enumerate(self.rows):
            cells = []
            for j, value in enumerate(row):
                why = self.flags.get((i, j))
                if why:
                    cells.append(
                        f'<td class="flagged" title="{esc("; ".join(why))}">{esc(value)}</td>'
                    )
                else:
                    cells.append(f"<td>{esc(value)}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        if self.truncated:
            out.append(f'<p class="note">Showing {len(self.rows)} of {self.total_rows} rows.</p>')
        return "".join(out)


def _grid(frozen: FrozenFile) -> list[list[str]]:
    if frozen.kind == "spreadsheet":
        sheets = xlsx_sheets(frozen.data)
        return sheets[0].rows if sheets else []
    if frozen.kind == "table":
        return csv_rows(frozen.data)
    raise ValueError(f"{frozen.path} is not a table")


def table_preview(frozen: FrozenFile, check: FileCheck, max_rows: int = 500) -> TablePreview:
    """The first ``max_rows`` data rows of a CSV or the first sheet of a workbook, with the
    cells that findings (other than passes) point at."""
    grid = _grid(frozen)
    nhead = min(check.header_rows, len(grid))
    header, data = grid[:nhead], grid[nhead:]
    width = max((len(r) for r in grid), default=0)
    shown = [r + [""] * (width - len(r)) for r in data[:max_rows]]
    flags: dict[tuple[int, int], list[str]] = {}
    for f in check.findings:
        if f.status == "pass":
            continue
        for r, c in f.cells:
            if 0 <= r < len(shown) and 0 <= c < width:
                flags.setdefault((r, c), []).append(f"{f.rule_id}: {f.message}")
    return TablePreview(
        path=frozen.path,
        header=[h + [""] * (width - len(h)) for h in header],
        rows=shown,
        flags=flags,
        total_rows=len(data),
        truncated=len(data) > max_rows,
    )


# --- Markdown and notebooks ----------------------------------------------------------------


def _markdown(attachments: dict[str, Any] | None = None) -> MarkdownIt:
    """CommonMark without raw HTML; images only from the cell's own validated attachments
    (anything else shows its alt text, so the checker's browser fetches nothing)."""
    md = MarkdownIt("commonmark", {"html": False})
    files = attachments or {}

    def image(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env)
        src = str(token.attrGet("src") or "")
        if src.startswith("attachment:"):
            bundle = files.get(src.removeprefix("attachment:")) or {}
            for mime in _SAFE_IMAGES:
                raw = image_bytes(mime, bundle.get(mime))
                if raw is not None:
                    return _img(mime, raw, alt)
        return f'<span class="note">[image not shown: {esc(alt or src)}]</span>'

    md.add_render_rule("image", image)
    return md


def _img(mime: str, raw: bytes, alt: str) -> str:
    data = base64.b64encode(raw).decode("ascii")
    return f'<img src="data:{mime};base64,{data}" alt="{esc(alt)}">'


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _pre(cls: str, text: str) -> str:
    return f'<pre class="{cls}">{esc(_ANSI.sub("", text))}</pre>'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _output_html(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        return _pre(f"stream {name}" if name in _STREAMS else "stream", _text(output.get("text")))
    if kind == "error":
        tb = "\n".join(_text(t) for t in output.get("traceback", []) or [])
        return _pre("error", tb or f"{output.get('ename', '')}: {output.get('evalue', '')}")
    bundle: dict[str, Any] = output.get("data") or {}
    parts: list[str] = []
    for mime in _SAFE_IMAGES:
        if mime in bundle:
            raw = image_bytes(mime, bundle[mime])
            parts.append(_img(mime, raw, "output image") if raw else _note(f"Invalid {mime}"))
            break
    else:
        if "image/svg+xml" in bundle or "image/gif" in bundle:
            parts.append(_note("Image output not rendered (only PNG and JPEG are shown)."))
    if "text/html" in bundle:
        parts.append(_note("HTML output not rendered."))
    if "application/javascript" in bundle:
        parts.append(_note("JavaScript output not rendered."))
    if "text/markdown" in bundle:
        parts.append(_markdown().render(_text(bundle["text/markdown"])))
    elif "text/plain" in bundle and not any(p.startswith("<img") for p in parts):
        parts.append(_pre("text", _text(bundle["text/plain"])))
    elif "text/latex" in bundle:
        parts.append(_pre("latex", _text(bundle["text/latex"])))
    return "".join(parts)


def notebook_html(data: bytes) -> str:
    """A notebook as inert HTML: one ``<section id="cell-N">`` per cell (the N of the checks'
    findings), code and outputs escaped, Markdown without raw HTML."""
    nb = json.loads(data)
    out = ['<div class="notebook">']
    for index, cell in enumerate(nb.get("cells", [])):
        ctype = str(cell.get("cell_type", ""))
        ctype = ctype if ctype in _CELL_TYPES else "raw"
        source = _text(cell.get("source"))
        out.append(
            f'<section class="nb-cell nb-{ctype}" id="cell-{index}">'
            f'<div class="nb-label">Cell {index}</div>'
        )
        if ctype == "markdown":
            out.append(_markdown(cell.get("attachments")).render(source))
        elif ctype == "code":
            out.append(_pre("source", source))
            for output in cell.get("outputs", []) or []:
                out.append(f'<div class="nb-output">{_output_html(output)}</div>')
        else:
            out.append(_pre("raw", source))
        out.append("</section>")
    out.append("</div>")
    return "".join(out)


def text_html(data: bytes, *, markdown: bool = False) -> str:
    """A .txt file as escaped ``<pre>``; a .md file rendered without raw HTML or images."""
    text = data.decode("utf-8", errors="replace")
    if markdown:
        return f'<div class="document">{_markdown().render(text)}</div>'
    return _pre("text", text)
