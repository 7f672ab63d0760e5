"""Inspection of a table that was not saved with ``tre.save`` (any CSV, a workbook sheet).

Without an output record nothing is known about contributors, so the checks are about what
the bytes show: small counts, identifiers, and row-level data. A count column is one whose
values are all non-negative whole numbers; a value from 1 up to the policy's threshold in it
fails, because it could single out a handful of people.
"""

from __future__ import annotations

import re

from trenv.airlock.checks.counts import (
    COUNT_NAME,
    MICRODATA_ROWS,
    NOT_COUNT_NAME,
    is_default_index,
    is_placeholder,
    whole_number,
)
from trenv.airlock.checks.models import Finding, finding
from trenv.disclosure.policy import load_policy
from trenv.identifiers import PSEUDONYM, is_identifier_name, looks_like_bsn

__all__ = ["MICRODATA_ROWS", "inspect_grid", "or_clean_table", "threshold_of"]

# All values distinct over at least this many rows: a key, not a category.
DISTINCT_ROWS = 100
_CODE = re.compile(r"^[A-Za-z]{0,4}[-_]?\d{3,}$")


def threshold_of(policy: str) -> int:
    return load_policy(policy).threshold.min_contributors


def inspect_grid(
    rows: list[list[str]],
    *,
    policy: str,
    where: str = "",
    positions: bool = True,
) -> list[Finding]:
    """Findings for a table whose first row is the header. ``where`` prefixes messages (a
    sheet name); without ``positions`` the findings name cells but mark none (sheets that
    are not previewed)."""
    prefix = f"{where}: " if where else ""
    if not rows:
        return [finding("empty", "review", f"{prefix}the table is empty.")]
    header, data = rows[0], rows[1:]
    width = max(len(header), *(len(r) for r in data)) if data else len(header)
    header = header + [""] * (width - len(header))
    data = [r + [""] * (width - len(r)) for r in data]
    limit = threshold_of(policy)
    out: list[Finding] = []

    def mark(cells: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return cells if positions else []

    if len(data) > MICRODATA_ROWS:
        out.append(
            finding(
                "row-limit",
                "review",
                f"{prefix}{len(data)} rows: this looks like row-level data (microdata), not "
                f"a summary table (more than {MICRODATA_ROWS} rows).",
            )
        )
    hits = [(i, j) for i, row in enumerate(data) for j, v in enumerate(row) if PSEUDONYM.search(v)]
    hits += [(-1, j) for j, v in enumerate(header) if PSEUDONYM.search(v)]
    if hits:
        out.append(
            finding(
                "pseudonyms",
                "fail",
                f"{prefix}{len(hits)} cells hold values that look like the TRE's pseudonyms.",
                mark([h for h in hits if h[0] >= 0]),
            )
        )
    for j, name in enumerate(header):
        col = [row[j] for row in data]
        filled = [v for v in col if v.strip()]
        label = f"column {j + 1} ({name!r})" if name.strip() else f"column {j + 1}"
        cells = [(i, j) for i, v in enumerate(col) if v.strip()]
        if is_identifier_name(name):
            out.append(
                finding(
                    "identifier-column",
                    "fail",
                    f"{prefix}{label} is named like an identifier of people.",
                    mark(cells),
                )
            )
            continue
        if filled and sum(looks_like_bsn(v) for v in filled) >= max(1, 0.8 * len(filled)):
            out.append(
                finding(
                    "identifier-column",
                    "fail",
                    f"{prefix}{label} holds numbers that pass the BSN 11-test.",
                    mark(cells),
                )
            )
            continue
        if is_default_index(name, col):
            continue
        if len(filled) >= DISTINCT_ROWS and len(set(filled)) == len(filled):
            codes = sum(bool(_CODE.match(v.strip())) for v in filled) >= 0.9 * len(filled)
            out.append(
                finding(
                    "identifier-column",
                    "fail" if codes else "review",
                    f"{prefix}{label} has a different value in each of its {len(filled)} rows"
                    + (", like a key or case number." if codes else "; is it an identifier?"),
                    mark(cells),
                )
            )
            continue
        whole = [whole_number(v) for v in col]
        # Placeholders of blanked cells ("-", "x", "<10") leave the rest of a column counts.
        count_like = filled and all(
            w is not None for w, v in zip(whole, col, strict=True) if not is_placeholder(v)
        )
        if not count_like or (NOT_COUNT_NAME.search(name) and not COUNT_NAME.match(name.strip())):
            continue
        small = [(i, j) for i, w in enumerate(whole) if w is not None and 0 < w < limit]
        if small:
            out.append(
                finding(
                    "small-counts",
                    "fail",
                    f"{prefix}{label} looks like counts and {len(small)} of its values are "
                    f"below the policy threshold of {limit}.",
                    mark(small),
                )
            )
    return out


def or_clean_table(found: list[Finding]) -> list[Finding]:
    """``found``, led by a passing finding that says so when none of them is a problem."""
    if any(f.status != "pass" for f in found):
        return found
    clean = finding("table", "pass", "No small counts, identifiers or row-level data found.")
    return [clean, *found]
