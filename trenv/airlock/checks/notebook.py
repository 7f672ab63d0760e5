"""Notebooks: their outputs are what could carry data out, so each output is scanned.

Printed frames, long printed streams and embedded images are what a checker must look at;
pseudonym-like values anywhere in the outputs fail, and so does a listing: more rows of one
table than a result needs, in any output (a stream, ``text/plain``, HTML, markdown, LaTeX;
the intake refuses JSON outputs), or in all outputs together. A notebook without outputs
carries only code and prose, and passes. Findings point at the cell:
``cells=[(cell_index, 0)]``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.patterns import PSEUDONYM
from trenv.airlock.checks.printed import html_rows, text_rows

# A stream output longer than this many lines is reviewed (a printed frame or a data dump).
MAX_STREAM_LINES = 50
# More rows of one table than this in one output fail. A result is a handful of rows: a
# breakdown by offence, region or age band has under 20, df.head() shows 5 and pandas
# shortens a long frame to 10. A notebook output cannot be checked cell by cell, so a
# longer table is a listing of row-level data; tables meant for release go through
# tre.save, where every cell is checked.
MAX_TABLE_ROWS = 20
# Table rows in all outputs together: ten outputs at the limit above. Beyond this the
# notebook is a listing cut into pieces small enough to pass one by one.
MAX_NOTEBOOK_TABLE_ROWS = 200
_TABLE = re.compile(r"<table[\s>]", re.IGNORECASE)
_SPLIT = re.compile(r"\s{2,}|\t|\|")
_NUMBER = re.compile(r"^-?\d[\d,.]*%?$")
_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def looks_tabular(text: str) -> bool:
    """Plain text that looks like a printed DataFrame: several lines with the same number
    (two or more) of aligned fields, most of them holding numbers."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3:
        return False
    widths: dict[int, int] = {}
    numeric_lines = 0
    for line in lines:
        fields = [f for f in _SPLIT.split(line.strip()) if f]
        if len(fields) >= 2:
            widths[len(fields)] = widths.get(len(fields), 0) + 1
            if sum(bool(_NUMBER.match(f)) for f in fields) >= 1:
                numeric_lines += 1
    common = max(widths.values(), default=0)
    return common >= 3 and numeric_lines >= 3


def scan_notebook(data: bytes) -> list[Finding]:
    nb = json.loads(data)
    out: list[Finding] = []
    n_outputs = 0
    total_rows = 0
    table_cells: list[tuple[int, int]] = []
    for index, cell in enumerate(nb.get("cells", [])):
        at = [(index, 0)]
        where = f"Cell {index}"
        if cell.get("cell_type") == "markdown" and PSEUDONYM.search(_text(cell.get("source"))):
            out.append(
                finding(
                    "pseudonyms",
                    "fail",
                    f"{where} (markdown) contains values that look like the TRE's pseudonyms.",
                    at,
                )
            )
        if cell.get("attachments"):
            out.append(
                finding(
                    "images",
                    "review",
                    f"{where} has attached images; a checker must look at them.",
                    at,
                )
            )
        # Jupyter may keep each print() of a loop as an output of its own: the cell's
        # streams are also counted together, as the reader sees them.
        streams: list[str] = []
        stream_failed = False
        for output in cell.get("outputs", []) or []:
            n_outputs += 1
            kind = output.get("output_type")
            texts: list[str] = []
            rows = 0  # rows of the largest table this output shows
            shown = 0  # table rows it shows in all
            tabular = False  # shows something table-like, of any size
            what = "printed something that looks like a table"
            if kind == "stream":
                text = _text(output.get("text"))
                texts.append(text)
                lines = text.count("\n") + (0 if text.endswith("\n") else 1)
                if lines > MAX_STREAM_LINES:
                    out.append(
                        finding(
                            "long-output",
                            "review",
                            f"{where} printed {lines} lines (more than {MAX_STREAM_LINES}).",
                            at,
                        )
                    )
                rows = shown = text_rows(text)
                tabular = looks_tabular(text)
                streams.append(text)
                stream_failed |= rows > MAX_TABLE_ROWS
            elif kind == "error":
                texts.append("\n".join(_text(t) for t in output.get("traceback", [])))
                texts.append(_text(output.get("evalue")))
            else:
                bundle = output.get("data") or {}
                html = _text(bundle.get("text/html"))
                plain = _text(bundle.get("text/plain"))
                markdown = _text(bundle.get("text/markdown"))
                latex = _text(bundle.get("text/latex"))
                texts += [html, plain, markdown, latex]
                tables = html_rows(html) if html and _TABLE.search(html) else []
                in_text = max(text_rows(plain), text_rows(markdown), text_rows(latex))
                rows = max([*tables, in_text])
                shown = max(sum(tables), in_text)
                if tables:
                    tabular = True
                    what = f"shows a table with {max(tables)} rows (HTML output)"
                elif looks_tabular(plain):
                    tabular = True
                    what = "shows something that looks like a table"
                images = [m for m in _IMAGES if m in bundle]
                if images:
                    out.append(
                        finding(
                            "images",
                            "review",
                            f"{where} shows an image "
                            f"({', '.join(images)}); a checker must look at it.",
                            at,
                        )
                    )
            if rows > MAX_TABLE_ROWS:
                out.append(
                    finding(
                        "printed-table",
                        "fail",
                        f"{where} shows {rows} rows of a table (more than {MAX_TABLE_ROWS}): "
                        "that is row-level data, not a result. Clear the output or show an "
                        "aggregate; release tables with tre.save, which checks every cell.",
                        at,
                    )
                )
            elif tabular:
                out.append(finding("printed-table", "review", f"{where} {what}.", at))
            if shown:
                total_rows += shown
                if not table_cells or table_cells[-1] != at[0]:
                    table_cells.append(at[0])
            if any(PSEUDONYM.search(t) for t in texts if t):
                out.append(
                    finding(
                        "pseudonyms",
                        "fail",
                        f"{where} output contains values that look like the TRE's pseudonyms.",
                        at,
                    )
                )
        joined = text_rows("".join(streams)) if len(streams) > 1 and not stream_failed else 0
        if joined > MAX_TABLE_ROWS:
            out.append(
                finding(
                    "printed-table",
                    "fail",
                    f"{where} prints {joined} rows of a table over {len(streams)} outputs "
                    f"(more than {MAX_TABLE_ROWS}): that is row-level data, not a result. "
                    "Clear the output or print an aggregate.",
                    at,
                )
            )
    if total_rows > MAX_NOTEBOOK_TABLE_ROWS:
        out.append(
            finding(
                "printed-table-total",
                "fail",
                f"The notebook's outputs show {total_rows} table rows in all (more than "
                f"{MAX_NOTEBOOK_TABLE_ROWS}): a listing cut into pieces is still a listing. "
                "Clear the outputs that print data.",
                table_cells,
            )
        )
    if n_outputs == 0:
        out.append(
            finding(
                "outputs", "pass", "The notebook has no outputs: it carries code and prose only."
            )
        )
    elif not out:
        out.append(
            finding(
                "outputs",
                "pass",
                f"{n_outputs} outputs scanned; none shows a table, an image or identifiers.",
            )
        )
    return out
