"""How many rows of a table a piece of printed output shows (plain text or HTML).

A printed DataFrame, ``print(df.to_csv())``, a markdown or LaTeX table or numpy's rows are lines of
one shape: the same number of fields between the same delimiters, or whitespace-separated
fields that are mostly numbers. Prose and progress logs are not: their words outnumber
their numbers and their commas do not line up. The count is of the largest family of
same-shaped lines, so a table split by blank lines still counts whole; a header (the
family's first line, without a digit) and rule lines (``|---|``, ``====``) are not rows.
:func:`looks_tabular` asks a looser question of text of any length: does it look like a
printed frame at all.
"""

from __future__ import annotations

import re

_DELIMITERS = (",", ";", "\t", "|", "&")  # & separates LaTeX cells
# A delimited field longer than this is a sentence or a log message, not a table cell.
MAX_FIELD_CHARS = 64
_ALIGNED = re.compile(r"\s{2,}|\t")
_NUMBER = re.compile(r"^[-+(]?\d[\d.,:/%eE+-]*\)?$")
_DIGIT = re.compile(r"\d")
_RULE = re.compile(r"^[\s\-|:+=_]*$")
_TABLE = re.compile(r"<table[\s>]", re.IGNORECASE)
_TABLE_END = re.compile(r"</table\s*>", re.IGNORECASE)
_TR = re.compile(r"<tr[\s>]", re.IGNORECASE)
_TD = re.compile(r"<td[\s>]", re.IGNORECASE)
# For looks_tabular: fields of a printed frame, and a field that is a number.
_FIELDS = re.compile(r"\s{2,}|\t|\|")
_NUMERIC_FIELD = re.compile(r"^-?\d[\d,.]*%?$")

Signature = tuple[str, int]


def _signatures(line: str) -> set[Signature]:
    """The table shapes one line could be a row of."""
    out: set[Signature] = set()
    for sep in _DELIMITERS:
        n = line.count(sep)
        if n and all(len(f.strip()) <= MAX_FIELD_CHARS for f in line.split(sep)):
            out.add((sep, n))
    core = line.strip().strip("[]")  # numpy prints rows as "[ 1  2  3]"
    aligned = [f for f in _ALIGNED.split(core) if f]
    if len(aligned) >= 2 and any(_NUMBER.match(f) for f in aligned):
        out.add(("  ", len(aligned)))
    words = core.split()
    if len(words) >= 2 and 2 * sum(bool(_NUMBER.match(f)) for f in words) >= len(words):
        out.add((" ", len(words)))
    return out


def text_rows(text: str) -> int:
    """Rows of the largest table that ``text`` prints (0 for prose)."""
    counts: dict[Signature, int] = {}
    header: dict[Signature, bool] = {}
    for line in text.splitlines():
        if _RULE.match(line):
            continue
        for sig in _signatures(line):
            if sig not in counts:
                header[sig] = not _DIGIT.search(line)
                counts[sig] = 0
            counts[sig] += 1
    return max((n - header[sig] for sig, n in counts.items()), default=0)


def html_rows(html: str) -> list[int]:
    """Data rows (rows with a ``<td>``) of each ``<table>`` in ``html``, in order."""
    out = []
    for part in _TABLE.split(html)[1:]:
        body = _TABLE_END.split(part, maxsplit=1)[0]
        out.append(sum(bool(_TD.search(row)) for row in _TR.split(body)[1:]))
    return out


def looks_tabular(text: str) -> bool:
    """Plain text that looks like a printed DataFrame: several lines with the same number
    (two or more) of aligned fields, most of them holding numbers."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 3:
        return False
    widths: dict[int, int] = {}
    numeric_lines = 0
    for line in lines:
        fields = [f for f in _FIELDS.split(line.strip()) if f]
        if len(fields) >= 2:
            widths[len(fields)] = widths.get(len(fields), 0) + 1
            if sum(bool(_NUMERIC_FIELD.match(f)) for f in fields) >= 1:
                numeric_lines += 1
    common = max(widths.values(), default=0)
    return common >= 3 and numeric_lines >= 3
