"""A plain table (a CSV, a workbook sheet) read as labels and counts.

Without an output record the server knows only what the grid shows, so the reading is by
content: a *count column* holds non-negative whole numbers, or placeholders where a cell was
blanked (an empty cell, ``-``, ``x``, ``*``, ``.``, ``..``, ``<10``), and is not named like
a year, an age or a code; a *label column* holds text (or whole numbers named like a
year). Fractions (means, shares) are neither. The airlock's checks of plain tables
(small counts, margins that give blanked cells back, differencing between tables) all
read tables this way.

Differencing compares two tables cell by cell: the same label columns, the same row labels
and the same count column (``n``, ``count``, ``aantal``, ``total`` ... are one measure)
mean the same cell, so two such counts that differ by a few people isolate those people.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from trenv.identifiers import is_identifier_name

# More data rows than this and a table looks like row-level data rather than a summary.
MICRODATA_ROWS = 1000
NOT_COUNT_NAME = re.compile(
    r"(year|jaar|month|maand|week|day|dag|quarter|kwartaal|age|leeftijd|code|date|datum|"
    r"postcode|zip)",
    re.IGNORECASE,
)
COUNT_NAME = re.compile(r"^(n|count|counts|freq|frequency|aantal|number|total|totaal)$", re.I)
# Headers of a single unnamed count: pandas writes "0" for an unnamed Series, "size" for
# groupby().size().reset_index(); both are the same measure as "n".
_COUNT_SYNONYM = re.compile(r"^(|0|size|n|count|counts|freq|frequency|aantal|number|total|totaal)$")
_PLACEHOLDERS = frozenset({"", "-", "x", "*", ".", "..", "\u2013", "\u2014", "\u2026"})
_LESS_THAN = re.compile(r"^<\s*(\d+)$")
Key = tuple[tuple[str, ...], tuple[str, ...], str]


def is_placeholder(value: str) -> bool:
    """An empty or blanked cell: nothing published there."""
    v = value.strip().lower()
    return v in _PLACEHOLDERS or bool(_LESS_THAN.match(v))


def placeholder_upper(value: str) -> float:
    """The largest whole number a placeholder allows: ``<10`` says at most 9."""
    m = _LESS_THAN.match(value.strip())
    return float(int(m.group(1)) - 1) if m else math.inf


def number(value: str) -> float | None:
    v = value.strip()
    if not v:
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return None if f != f else f  # NaN


def whole_number(value: str) -> int | None:
    """A non-negative whole number, else None."""
    f = number(value)
    if f is None or f < 0 or not f.is_integer() or math.isinf(f):
        return None
    return int(f)


def is_default_index(name: str, values: Sequence[str]) -> bool:
    # pandas' to_csv writes an unnamed 0..n-1 index: positions, not counts.
    return not name.strip() and list(values) == [str(i) for i in range(len(values))]


def is_count_column(name: str, values: Sequence[str]) -> bool:
    """Whole numbers (placeholders allowed), named like a count or at least not like a
    year, an age or a code, and not like an identifier."""
    filled = [v for v in values if not is_placeholder(v)]
    if not filled or any(whole_number(v) is None for v in filled):
        return False
    if is_identifier_name(name) or is_default_index(name, values):
        return False
    return not NOT_COUNT_NAME.search(name) or bool(COUNT_NAME.match(name.strip()))


def _is_label_column(name: str, values: Sequence[str]) -> bool:
    if is_identifier_name(name) or is_default_index(name, values):
        return False
    texts = [v for v in values if not is_placeholder(v)]
    if any(number(v) is None for v in texts):
        return True  # some text: labels
    return bool(texts) and all(whole_number(v) is not None for v in texts)  # a year, a code


@dataclass(frozen=True)
class CountTable:
    """The label and count columns of a grid's data rows (positions are grid columns)."""

    label_columns: list[int]
    count_columns: list[int]
    header: list[str]
    rows: list[list[str]]  # data rows, padded to the header's width

    def labels(self, r: int) -> tuple[str, ...]:
        return tuple(self.rows[r][j] for j in self.label_columns)

    def cell(self, r: int, j: int) -> str:
        return self.rows[r][j]


def read_counts(rows: list[list[str]]) -> CountTable | None:
    """The grid (first row the header) as a count table, or None if it is not one: no
    label column, no count column, or more rows than a summary has."""
    if len(rows) < 2 or len(rows) - 1 > MICRODATA_ROWS:
        return None
    width = max(len(r) for r in rows)
    grid = [r + [""] * (width - len(r)) for r in rows]
    header, data = grid[0], grid[1:]
    counts, labels = [], []
    for j, name in enumerate(header):
        col = [row[j] for row in data]
        if is_count_column(name, col):
            counts.append(j)
        elif _is_label_column(name, col):
            labels.append(j)
    if not counts or not labels:
        return None
    return CountTable(labels, counts, header, data)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _measure(name: str) -> str:
    n = _norm(name)
    return "count" if _COUNT_SYNONYM.match(n) else n


def count_cells(rows: list[list[str]]) -> dict[Key, float]:
    """Published counts by (label column names, row labels, measure); cells whose key is
    not unique in the table (labels that do not tell rows apart) are left out."""
    table = read_counts(rows)
    if table is None:
        return {}
    names = tuple(_norm(table.header[j]) for j in table.label_columns)
    out: dict[Key, float] = {}
    seen: set[Key] = set()
    for r in range(len(table.rows)):
        labels = tuple(_norm(v) for v in table.labels(r))
        for j in table.count_columns:
            value = whole_number(table.cell(r, j))
            if value is None:
                continue
            key = (names, labels, _measure(table.header[j]))
            if key in seen:
                out.pop(key, None)
                continue
            seen.add(key)
            out[key] = float(value)
    return out


def _describe(key: Key) -> str:
    names, labels, measure = key
    shown = ", ".join(f"{n}={v}" for n, v in zip(names, labels, strict=True) if n or v)
    return f"{shown or '(no labels)'} [{measure}]"


def near_counts(
    earlier: Sequence[tuple[str, dict[Key, float]]],
    mine: dict[Key, float],
    *,
    threshold: float,
    name: str,
) -> list[str]:
    """The same cell counted in ``name`` and in an earlier named table, fewer than
    ``threshold`` people apart (but apart): the difference is a count of those people.

    The messages quote this file's count, never the earlier table's: the findings travel
    in the disclosure record of this file, and the earlier table may never be released."""
    problems = []
    for other, cells in earlier:
        for key, value in cells.items():
            mine_value = mine.get(key)
            if mine_value is not None and 0 < abs(mine_value - value) < threshold:
                problems.append(
                    f"{_describe(key)} is {mine_value:g} in {name} and differs from the same "
                    f"cell of {other} by fewer than {threshold:g} people"
                )
    return problems
