"""Jupyter notebooks: refused at intake unless valid nbformat 4 without data files in
outputs or attachments; then each output is scanned, since outputs are what could carry
data out.

Intake admits only output and attachment types a notebook shows (text, HTML, markdown,
LaTeX, images that really are images); anything else (application/octet-stream,
application/vnd.*, parquet, JSON data...) is a data file in disguise, and widget state can
hold data too.

Printed frames, long printed streams and embedded images are what a checker must look at;
pseudonym-like values anywhere in the outputs fail, and so does a listing: more rows of one
table than a result needs, in any output (a stream, ``text/plain``, HTML, markdown, LaTeX;
the intake refuses JSON outputs), or in all outputs together. A notebook without outputs
carries only code and prose, and passes. Findings point at the cell:
``cells=[(cell_index, 0)]``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from trenv.airlock.checks.models import FileCheck, Finding, finding, summarise
from trenv.airlock.checks.printed import html_rows, looks_tabular, text_rows
from trenv.airlock.formats.png import PNG_MAGIC
from trenv.airlock.formats.text import utf8_text
from trenv.errors import Invalid
from trenv.identifiers import PSEUDONYM

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

JPEG_MAGIC = b"\xff\xd8\xff"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
# Output and attachment types a notebook may carry; anything else (application/octet-stream,
# application/vnd.*, application/x-*, parquet, JSON data...) is a data file in disguise.
NOTEBOOK_OUTPUT_TYPES = frozenset(
    {
        "text/plain",
        "text/html",
        "text/markdown",
        "text/latex",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/svg+xml",
        "application/javascript",
    }
)
ATTACHMENT_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
_IMAGE_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (PNG_MAGIC,),
    "image/jpeg": (JPEG_MAGIC,),
    "image/gif": GIF_MAGICS,
}

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
_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


# --- intake ----------------------------------------------------------------------------------


def image_bytes(mime: str, payload: Any) -> bytes | None:
    """Decoded bytes of a base64 image in a notebook if they really are ``mime``."""
    if isinstance(payload, list):
        payload = "".join(str(p) for p in payload)
    if not isinstance(payload, str):
        return None
    try:
        raw = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(_IMAGE_MAGIC.get(mime, (b"\x00\x00\x00",))) else None


def notebook_problems(nb: dict[str, Any]) -> list[str]:
    """Why a (valid v4) notebook may not leave: data files in outputs or attachments."""
    problems: list[str] = []
    if "widgets" in (nb.get("metadata") or {}):
        problems.append("the notebook stores widget state, which can hold data")
    for index, cell in enumerate(nb.get("cells", [])):
        where = f"cell {index}"
        for name, bundle in (cell.get("attachments") or {}).items():
            for mime, payload in bundle.items():
                if mime not in ATTACHMENT_TYPES:
                    problems.append(f"{where} has an attachment {name!r} of type {mime}")
                elif image_bytes(mime, payload) is None:
                    problems.append(f"{where} has an attachment {name!r} that is not a {mime}")
        for output in cell.get("outputs", []) or []:
            for mime, payload in (output.get("data") or {}).items():
                if mime not in NOTEBOOK_OUTPUT_TYPES:
                    problems.append(f"{where} has an output of type {mime}")
                elif mime in _IMAGE_MAGIC and image_bytes(mime, payload) is None:
                    problems.append(f"{where} has an image output that is not a {mime}")
    return problems


def validate(path: str, data: bytes) -> None:
    import nbformat  # imported when a notebook is first validated, not with the airlock

    text = utf8_text(path, data, "notebook")
    bad = Invalid(
        f"{path} is not a valid Jupyter notebook (nbformat 4).",
        "save it from JupyterLab (File > Save) and try again",
    )
    try:
        raw = json.loads(text)
    except ValueError:
        raise bad from None
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        raise bad
    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
        nbformat.validate(nb)
    except Exception:  # nbformat raises several unrelated types for broken notebooks
        raise bad from None
    problems = notebook_problems(raw)
    if problems:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise Invalid(
            f"{path} carries content that can hold data files: {shown}.",
            "clear those outputs (or remove the attachments) and save the notebook again; "
            "export tables as CSV instead",
        )


# --- checks ----------------------------------------------------------------------------------


def check(frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
    return summarise("notebook", scan_notebook(frozen.data), header_rows=0)


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
