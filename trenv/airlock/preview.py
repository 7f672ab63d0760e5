"""Safe previews of frozen files for the request page (server-rendered HTML, no scripts).

Everything in a requested file was written by untrusted code and is shown to a checker who is
logged in to the airlock, so every string is escaped with ``html.escape``; Markdown is
rendered by markdown-it with raw HTML disabled; images are shown only as PNG or JPEG
``data:`` URIs after their magic bytes are checked (and nothing is fetched from elsewhere);
HTML, SVG and JavaScript outputs of notebooks are never rendered, only noted.

**Judged previews.** The request page is also seen by the requester and the project's
members, whose browsers are outside the TRE: for them a preview must not be a way to read a
file out in bulk (the bytes of a request's files go only to the checkers reviewing it,
:func:`trenv.airlock.permissions.may_read_file_bytes`). Given the project's output limits
(``limits``, a :class:`~trenv.judge.text.TextLimits` from the policy's ``egress``), the
functions here show such a viewer no more than the notebook server would show of the same
content:

- a text or Markdown file is judged whole (:func:`judge_document`): when it holds more
  encoded data, table rows, pseudonyms or characters than one output may, it is replaced by
  a note naming the reason. Rows are counted as for a file read in the Lab
  (:func:`trenv.judge.text.record_rows`, any framing) rather than as same-shaped lines, which
  would call wrapped prose or code a table, and base64 wrapped into short lines counts as
  encoded data;
- a notebook is judged part by part, in document order: each output as a kernel message is
  (every text representation under :func:`~trenv.judge.text.judge_text`, rendered or not),
  each cell's source as a small file (:func:`judge_document`). A part that may not be shown
  becomes a marker naming the reason. And the whole notebook has a budget: everything shown
  together holds at most :data:`NOTEBOOK_OUTPUTS` times what one output may (characters,
  table rows, pseudonyms, encoded data, counted as the Lab counts a cell's outputs); once a
  part would take the total past it, that part and any later part that does not fit become
  markers too. Images are not counted against it: they are never inlined as they are.
  A PNG output or attachment is shown as :func:`trenv.judge.image.coarse_preview_png` (too
  small and too coarse to carry the bytes a packed image holds, and without its text
  chunks); a JPEG, or a PNG that does not decode, is a note that the figure is shown to the
  reviewing checkers.

Without ``limits`` (the checkers reviewing the request) nothing is judged.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from trenv.airlock.checks.grid import csv_rows, xlsx_sheets
from trenv.airlock.checks.models import FileCheck
from trenv.airlock.formats.notebook import image_bytes
from trenv.airlock.intake import FrozenFile
from trenv.judge.image import ImageRefused, coarse_preview_png
from trenv.judge.text import (
    Cut,
    TextLimits,
    TextMeasure,
    judge_measure,
    measure,
    record_rows,
    wrapped_blob_chars,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SAFE_IMAGES = ("image/png", "image/jpeg")
# Names from the notebook that end up in class attributes: only known ones, never its text.
_STREAMS = ("stdout", "stderr")
_CELL_TYPES = ("markdown", "code", "raw")
# A judged notebook shows, over all its cell sources and outputs together, at most this many
# times what one output may show (the Lab's cell budget is four full outputs as well).
NOTEBOOK_OUTPUTS = 4
CHECKERS_SEE = (
    "The checkers reviewing the request see it; it leaves the TRE only in a released bundle."
)
FIGURE_FOR_CHECKERS = "figure shown to the reviewing checkers"


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


def judge_table(shown: TablePreview, limits: TextLimits) -> Cut | None:
    """Why the cells of a table preview (already cut to ``limits.max_table_rows`` rows) may
    not be shown to a viewer who may not read the file: encoded data, pseudonyms or
    characters beyond one output's limits, or rows hidden inside cells (a cell holding a
    whole CSV)."""
    text = "\n".join("\t".join(row) for row in [*shown.header, *shown.rows])
    found = measure(text)
    # Each shown row is one line of the same shape; the header lines are not data.
    rows = max(0, found.table_rows - len(shown.header))
    return judge_measure(replace(found, table_rows=rows), limits)


# --- judging whole texts -------------------------------------------------------------------


def document_measure(text: str) -> TextMeasure:
    """:func:`~trenv.judge.text.measure` for a whole file or a cell's source: base64 wrapped
    into short lines counts as encoded data, and rows are the records of any framing
    (:func:`~trenv.judge.text.record_rows`), not same-shaped lines (a module of code or a
    wrapped paragraph has many lines with one comma, and is no table)."""
    found = measure(text)
    return replace(
        found,
        blob_chars=found.blob_chars + wrapped_blob_chars(text),
        table_rows=record_rows(text),
    )


def judge_document(text: str, limits: TextLimits) -> Cut | None:
    """Why a whole text may not be shown under one output's ``limits``, or None."""
    return judge_measure(document_measure(text), limits)


def withheld_html(what: str, cut: Cut) -> str:
    """The marker that stands for something not shown: ``what`` with its verb ("This output
    is"), why, and who sees it."""
    return (
        f'<p class="note withheld" data-rule="{esc(cut.rule)}">'
        f"{esc(what)} not shown here: {esc(cut.reason)} {esc(CHECKERS_SEE)}</p>"
    )


# --- Markdown and notebooks ----------------------------------------------------------------


def _markdown(attachments: dict[str, Any] | None = None, *, judged: bool = False) -> MarkdownIt:
    """CommonMark without raw HTML; images only from the cell's own validated attachments
    (anything else shows its alt text, so the checker's browser fetches nothing); ``judged``:
    attachments as coarse previews (:func:`_figure`)."""
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
                    return _figure(mime, raw, alt, judged=judged)
        return f'<span class="note">[image not shown: {esc(alt or src)}]</span>'

    md.add_render_rule("image", image)
    return md


def _img(mime: str, raw: bytes, alt: str, cls: str = "") -> str:
    data = base64.b64encode(raw).decode("ascii")
    attr = f' class="{cls}"' if cls else ""
    return f'<img{attr} src="data:{mime};base64,{data}" alt="{esc(alt)}">'


def _figure(mime: str, raw: bytes, alt: str, *, judged: bool) -> str:
    """An image as it is, or (``judged``) a PNG's coarse preview drawn by the server and a
    note for anything else: the bytes of the image itself never reach the browser."""
    if not judged:
        return _img(mime, raw, alt)
    if mime == "image/png":
        try:
            return _img("image/png", coarse_preview_png(raw), f"preview of {alt}", "coarse")
        except ImageRefused:
            pass
    return f'<span class="note">[{esc(alt)}: {FIGURE_FOR_CHECKERS}]</span>'


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _pre(cls: str, text: str) -> str:
    return f'<pre class="{cls}">{esc(_ANSI.sub("", text))}</pre>'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _any_text(value: Any) -> str:
    """A representation's text as a judge reads it (JSON for anything but strings)."""
    if isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    ):
        return _text(value)
    return json.dumps(value, ensure_ascii=False, indent=1)


def output_texts(output: dict[str, Any]) -> list[str]:
    """The text of one output, every representation but images (the Lab judges SVG as a
    figure too), rendered here or not."""
    kind = output.get("output_type")
    if kind == "stream":
        texts = [_any_text(output.get("text", ""))]
    elif kind == "error":
        traceback = "\n".join(_text(t) for t in output.get("traceback", []) or [])
        texts = [f"{output.get('ename', '')}\n{output.get('evalue', '')}", traceback]
    else:
        bundle = output.get("data") or {}
        texts = [
            _any_text(value)
            for mime, value in (bundle.items() if isinstance(bundle, dict) else [])
            if not str(mime).startswith("image/")
        ]
    # As shown: terminal colours are dropped (an escape would count as a binary character).
    return [_ANSI.sub("", t) for t in texts if t]


@dataclass
class _Budget:
    """What a judged notebook preview has shown so far: each part under one output's limits,
    all of them together under :data:`NOTEBOOK_OUTPUTS` times those."""

    limits: TextLimits
    chars: int = 0
    rows: int = 0
    pseudonyms: int = 0
    blob_chars: int = 0

    def admit(self, found: list[TextMeasure]) -> Cut | None:
        """None, counting ``found`` (the representations of one part) in, or why not."""
        for one in found:
            cut = judge_measure(one, self.limits)
            if cut is not None:
                return cut
        chars = self.chars + sum(m.chars for m in found)
        rows = self.rows + max((max(m.table_rows, m.html_rows) for m in found), default=0)
        pseudonyms = self.pseudonyms + max((m.pseudonyms for m in found), default=0)
        blob_chars = self.blob_chars + max((m.blob_chars for m in found), default=0)
        n, lim = NOTEBOOK_OUTPUTS, self.limits
        if (
            chars > n * lim.max_chars
            or rows > n * lim.max_table_rows
            or pseudonyms > n * lim.max_pseudonyms
            or blob_chars > n * lim.max_blob_chars
        ):
            return Cut(
                "notebook-total",
                f"the parts of the notebook above this one already show as much as its "
                f"preview may ({n} times one output's limits: {n * lim.max_chars:,} "
                f"characters, {n * lim.max_table_rows} table rows, "
                f"{n * lim.max_pseudonyms} pseudonyms and {n * lim.max_blob_chars:,} "
                "characters of encoded data in all).",
            )
        self.chars, self.rows, self.pseudonyms, self.blob_chars = (
            chars,
            rows,
            pseudonyms,
            blob_chars,
        )
        return None


def _output_html(output: dict[str, Any], budget: _Budget | None = None) -> str:
    if budget is not None:
        cut = budget.admit([measure(t) for t in output_texts(output)])
        if cut is not None:
            return withheld_html("This output is", cut)
    judged = budget is not None
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name")
        return _pre(f"stream {name}" if name in _STREAMS else "stream", _text(output.get("text")))
    if kind == "error":
        tb = "\n".join(_text(t) for t in output.get("traceback", []) or [])
        return _pre("error", tb or f"{output.get('ename', '')}: {output.get('evalue', '')}")
    bundle: dict[str, Any] = output.get("data") or {}
    parts: list[str] = []
    image = False
    for mime in _SAFE_IMAGES:
        if mime in bundle:
            raw = image_bytes(mime, bundle[mime])
            if raw:
                parts.append(_figure(mime, raw, "output image", judged=judged))
                image = True
            else:
                parts.append(_note(f"Invalid {mime}"))
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
    elif "text/plain" in bundle and not image:
        parts.append(_pre("text", _text(bundle["text/plain"])))
    elif "text/latex" in bundle:
        parts.append(_pre("latex", _text(bundle["text/latex"])))
    return "".join(parts)


def _source_html(ctype: str, source: str, attachments: Any, budget: _Budget | None) -> str:
    if budget is not None:
        cut = budget.admit([document_measure(source)])
        if cut is not None:
            return withheld_html("This cell's source is", cut)
    if ctype == "markdown":
        files = attachments if isinstance(attachments, dict) else None
        return _markdown(files, judged=budget is not None).render(source)
    return _pre("source" if ctype == "code" else "raw", source)


def notebook_html(data: bytes, *, limits: TextLimits | None = None) -> str:
    """A notebook as inert HTML: one ``<section id="cell-N">`` per cell (the N of the checks'
    findings), code and outputs escaped, Markdown without raw HTML.

    ``limits``: for a viewer who may not read the file, judged as the module's docstring
    says (sources and outputs over the limits become markers, images coarse previews)."""
    nb = json.loads(data)
    budget = _Budget(limits) if limits is not None else None
    out = ['<div class="notebook">']
    for index, cell in enumerate(nb.get("cells", [])):
        ctype = str(cell.get("cell_type", ""))
        ctype = ctype if ctype in _CELL_TYPES else "raw"
        source = _text(cell.get("source"))
        out.append(
            f'<section class="nb-cell nb-{ctype}" id="cell-{index}">'
            f'<div class="nb-label">Cell {index}</div>'
        )
        out.append(_source_html(ctype, source, cell.get("attachments"), budget))
        if ctype == "code":
            for output in cell.get("outputs", []) or []:
                out.append(f'<div class="nb-output">{_output_html(output, budget)}</div>')
        out.append("</section>")
    out.append("</div>")
    return "".join(out)


def text_html(data: bytes, *, markdown: bool = False, limits: TextLimits | None = None) -> str:
    """A .txt file as escaped ``<pre>``; a .md file rendered without raw HTML or images.

    ``limits``: for a viewer who may not read the file, a note instead when the whole text
    holds more than one output may (:func:`judge_document`)."""
    text = data.decode("utf-8", errors="replace")
    if limits is not None:
        cut = judge_document(text, limits)
        if cut is not None:
            return withheld_html("This document is" if markdown else "This text file is", cut)
    if markdown:
        return f'<div class="document">{_markdown().render(text)}</div>'
    return _pre("text", text)
