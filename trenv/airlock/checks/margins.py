"""Blanked cells of a plain table that its margins give back.

A researcher who blanks a small cell by hand (fraud: empty) but keeps the total (218) and
the other cells (120 + 95) has published it: 218 - 215 = 3. The engine audits the cells it
suppresses in tables made with ``tre.save``; this module audits every plain table the same
way, with its placeholders (:func:`~trenv.airlock.checks.counts.is_placeholder`) as unknowns:

- *margins* are rows (or count columns) named total, totaal, all, sum, subtotal (any case,
  optionally "grand"/"sub"), or a first/last row or column that equals the sum of the others
  wherever all of them are printed. A total row sums the rows with the same labels to its
  left (all rows when the name is in the first label column); a subtotal sums the block
  above it (or below, if that is what adds up). A margin whose printed numbers do not add
  up (people counted in several rows, a total of means) is not a sum, and is left out;
- every margin gives linear facts (margin = sum of its parts); with the unknowns
  non-negative (when every printed count is), the feasible interval of each unknown is two
  linear programmes (``trenv.disclosure.lp.feasible_intervals``), rounded inwards to whole
  numbers since the cells are counts;
- an unknown fails if that interval is a single value, narrower than the policy's
  protection (``secondary.count_width``, or ``relative_width`` of the least it can be), or
  lies wholly between 1 and the threshold (a small count, known to be one).

Tables without margins, or without placeholders, give no finding.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from trenv.airlock.checks.counts import (
    CountTable,
    is_placeholder,
    number,
    placeholder_upper,
    read_counts,
)
from trenv.airlock.checks.formulas import cell_ref
from trenv.airlock.checks.models import Finding, finding
from trenv.disclosure.lp import feasible_intervals
from trenv.disclosure.policy import load_policy

_MARGIN_NAME = re.compile(r"^(?:grand\s+|sub-?\s*)?(?:totals?|totaal|all|sum)$", re.IGNORECASE)
_SUBTOTAL = re.compile(r"^sub", re.IGNORECASE)
# Unknowns audited per table: a table with more blanks than this in its margins' reach is
# left to the checker (the message says so) rather than holding up the request.
MAX_UNKNOWNS = 400
_TOL = 1e-6


@dataclass(frozen=True)
class Margin:
    line: int  # the margin's row (or count column) position
    parts: tuple[int, ...]  # the rows (or count columns) it adds up


def _is_margin_name(text: str) -> bool:
    return bool(_MARGIN_NAME.match(" ".join(text.split())))


def _checks(values: np.ndarray, known: np.ndarray, m: Margin) -> tuple[int, bool]:
    """Relations of ``m`` (one per column of ``values``, lines are rows) that are printed
    in full and add up, and whether any relation rules the margin out as a sum."""
    parts = list(m.parts)
    verified = 0
    for c in range(values.shape[1]):
        if not known[m.line, c]:
            continue
        printed = known[parts, c]
        shown = float(values[parts, c][printed].sum())
        total = float(values[m.line, c])
        if printed.all():
            if abs(shown - total) > _TOL * max(1.0, abs(total)):
                return verified, True
            verified += 1
        elif shown > total + _TOL * max(1.0, abs(total)) and (values[known] >= 0).all():
            return verified, True  # the printed parts alone exceed it: not their sum
    return verified, False


def _margins(values: np.ndarray, known: np.ndarray, names: list[tuple[str, ...]]) -> list[Margin]:
    """Margin lines of ``values`` (lines are rows); ``names[i]`` are line i's labels."""
    n = values.shape[0]
    named: dict[int, int] = {}  # line -> label position of its margin name
    for i, labels in enumerate(names):
        k = next((k for k, v in enumerate(labels) if _is_margin_name(v)), None)
        if k is not None:
            named[i] = k
    out: list[Margin] = []
    margin_lines = set(named)
    for i, k in named.items():
        inner = [p for p in range(n) if p not in margin_lines]
        before = [p for p in inner if p < i and not any(i > q > p for q in margin_lines)]
        after = [p for p in inner if p > i and not any(i < q < p for q in margin_lines)]
        group = [p for p in inner if names[p][:k] == names[i][:k]]
        label = names[i][k]
        options = [before, after] if _SUBTOTAL.match(label.strip()) else [group, before, after]
        for parts in options:
            if not parts:
                continue
            _, ruled_out = _checks(values, known, Margin(i, tuple(parts)))
            if not ruled_out:
                out.append(Margin(i, tuple(parts)))
                break
    for i in sorted({0, n - 1} - margin_lines):
        parts = tuple(p for p in range(n) if p != i and p not in margin_lines)
        if len(parts) < 2:
            continue
        verified, ruled_out = _checks(values, known, Margin(i, parts))
        if verified and not ruled_out:
            out.append(Margin(i, parts))
            margin_lines.add(i)
    return out


@dataclass(frozen=True)
class Unknown:
    row: int
    column: int  # position among the count columns
    upper: float


def _facts(
    shape: tuple[int, int],
    values: np.ndarray,
    known: np.ndarray,
    row_margins: list[Margin],
    col_margins: list[Margin],
) -> tuple[list[dict[tuple[int, int], float]], list[float]]:
    """Each relation as coefficients on unknown cells and a right-hand side of printed ones."""
    relations: list[list[tuple[tuple[int, int], float]]] = []
    for m in row_margins:
        for c in range(shape[1]):
            relations.append([((m.line, c), 1.0), *(((p, c), -1.0) for p in m.parts)])
    for m in col_margins:
        for r in range(shape[0]):
            relations.append([((r, m.line), 1.0), *(((r, q), -1.0) for q in m.parts)])
    rows, rhs = [], []
    for relation in relations:
        coef: dict[tuple[int, int], float] = {}
        b = 0.0
        for cell, a in relation:
            if known[cell]:
                b -= a * float(values[cell])
            else:
                coef[cell] = coef.get(cell, 0.0) + a
        if coef:
            rows.append(coef)
            rhs.append(b)
    return rows, rhs


def _grid(table: CountTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = (len(table.rows), len(table.count_columns))
    values = np.zeros(shape)
    known = np.zeros(shape, dtype=bool)
    upper = np.full(shape, math.inf)
    for r in range(shape[0]):
        for c, j in enumerate(table.count_columns):
            text = table.cell(r, j)
            if is_placeholder(text):
                upper[r, c] = placeholder_upper(text)
            else:
                values[r, c] = number(text) or 0.0
                known[r, c] = True
    return values, known, upper


def margin_findings(
    rows: list[list[str]], *, policy: str, where: str = "", positions: bool = True
) -> list[Finding]:
    """Findings for the placeholders of a plain table (first row the header) that its
    margins pin down; nothing for tables without margins or placeholders."""
    table = read_counts(rows)
    if table is None:
        return []
    values, known, upper = _grid(table)
    if known.all():
        return []
    row_names = [table.labels(r) for r in range(len(table.rows))]
    col_names = [(table.header[j],) for j in table.count_columns]
    row_margins = _margins(values, known, row_names)
    col_margins = _margins(values.T, known.T, col_names)
    relations, rhs = _facts(values.shape, values, known, row_margins, col_margins)
    cells = sorted({cell for coef in relations for cell in coef})
    if not cells:
        return []
    prefix = f"{where}: " if where else ""
    if len(cells) > MAX_UNKNOWNS:
        return [
            finding(
                "margins-recover",
                "review",
                f"{prefix}{len(cells)} blank cells are in rows or columns with totals: too "
                f"many to audit (more than {MAX_UNKNOWNS}); a checker must make sure the "
                "totals do not give them back.",
            )
        ]
    index = {cell: k for k, cell in enumerate(cells)}
    a_eq = sparse.csr_matrix(
        (
            [a for coef in relations for a in coef.values()],
            (
                [r for r, coef in enumerate(relations) for _ in coef],
                [index[cell] for coef in relations for cell in coef],
            ),
        ),
        shape=(len(relations), len(cells)),
    )
    nonneg = bool((values[known] >= 0).all())
    lower = np.full(len(cells), 0.0 if nonneg else -math.inf)
    up = np.array([upper[cell] for cell in cells])
    try:
        lo, hi = feasible_intervals(
            a_eq, np.array(rhs), lower, up, sparse.identity(len(cells), format="csr")
        )
    except ValueError:
        return []  # the totals contradict the cells: they are not sums of them
    pol = load_policy(policy)
    threshold = pol.threshold.min_contributors
    out: list[Finding] = []
    for (r, c), a, b in zip(cells, lo, hi, strict=True):
        low = math.ceil(a - _TOL) if math.isfinite(a) else a
        high = math.floor(b + _TOL) if math.isfinite(b) else b
        need = max(pol.secondary.count_width, pol.secondary.relative_width * max(low, 0.0))
        j = table.count_columns[c]
        name = "/".join(v for v in table.labels(r) if v.strip()) or f"row {r + 1}"
        cell = f"{cell_ref(r + 1, j)} ({name} x {table.header[j]})"
        fix = (
            "Blank the totals that give it away too, or blank more cells so that each can "
            f"move by at least {need:g} (tre.save does this and audits it)."
        )
        if high - low <= 0:
            message = f"{prefix}{cell} is blank, but the totals give it back: = {low:g}. {fix}"
        elif high - low < need:
            message = (
                f"{prefix}{cell} is blank, but the totals narrow it to [{low:g}, {high:g}], "
                f"narrower than the policy's protection of {need:g}. {fix}"
            )
        elif low >= 1 and high < threshold:
            message = (
                f"{prefix}{cell} is blank, but the totals narrow it to [{low:g}, {high:g}]: "
                f"a count of at least 1 and below the policy's threshold of {threshold}. {fix}"
            )
        else:
            continue
        out.append(finding("margins-recover", "fail", message, [(r, j)] if positions else []))
    if not out:
        out.append(
            finding(
                "margins-recover",
                "pass",
                f"{prefix}{len(cells)} blank cells are in rows or columns with totals; none "
                f"can be narrowed below the protection that policy {pol.name} asks for.",
            )
        )
    return out
