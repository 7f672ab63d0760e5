"""Notebooks: their outputs are what could carry data out, so each output is scanned.

Printed frames, long printed streams and embedded images are what a checker must look at;
pseudonym-like values anywhere in the outputs fail. A notebook without outputs carries only
code and prose, and passes. Findings point at the cell: ``cells=[(cell_index, 0)]``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.patterns import PSEUDONYM

# A stream output longer than this many lines is reviewed (a printed frame or a data dump).
MAX_STREAM_LINES = 50
# An HTML table with more rows than this is a data dump rather than a result.
MAX_HTML_ROWS = 100
_TR = re.compile(r"<tr[\s>]", re.IGNORECASE)
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
        for output in cell.get("outputs", []) or []:
            n_outputs += 1
            kind = output.get("output_type")
            texts: list[str] = []
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
                if looks_tabular(text):
                    out.append(
                        finding(
                            "printed-table",
                            "review",
                            f"{where} printed something that looks like a table.",
                            at,
                        )
                    )
            elif kind == "error":
                texts.append("\n".join(_text(t) for t in output.get("traceback", [])))
                texts.append(_text(output.get("evalue")))
            else:
                bundle = output.get("data") or {}
                html = _text(bundle.get("text/html"))
                plain = _text(bundle.get("text/plain"))
                texts += [html, plain, _text(bundle.get("text/markdown"))]
                if html and _TABLE.search(html):
                    rows = len(_TR.findall(html))
                    status = "fail" if rows > MAX_HTML_ROWS else "review"
                    out.append(
                        finding(
                            "printed-table",
                            status,
                            f"{where} shows a table with {rows} rows (HTML output).",
                            at,
                        )
                    )
                elif plain and looks_tabular(plain):
                    out.append(
                        finding(
                            "printed-table",
                            "review",
                            f"{where} shows something that looks like a table.",
                            at,
                        )
                    )
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
            if any(PSEUDONYM.search(t) for t in texts if t):
                out.append(
                    finding(
                        "pseudonyms",
                        "fail",
                        f"{where} output contains values that look like the TRE's pseudonyms.",
                        at,
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
