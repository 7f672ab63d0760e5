"""Inspection of a table that was not saved with ``tre.save`` (any CSV, a workbook sheet).

Without an output record nothing is known about contributors, so the checks are about what
the bytes show: small counts, identifiers, and row-level data. A count column is one whose
values are all non-negative whole numbers; a value from 1 up to the policy's threshold in it
fails, because it could single out a handful of people.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.patterns import PSEUDONYM, is_identifier_name, looks_like_bsn
from trenv.disclosure.policy import load_policy

# More data rows than this and a table looks like row-level data rather than a summary.
MICRODATA_ROWS = 1000
# All values distinct over at least this many rows: a key, not a category.
DISTINCT_ROWS = 100
_NOT_COUNT = re.compile(
    r"(year|jaar|month|maand|week|day|dag|quarter|kwartaal|age|leeftijd|code|date|datum|"
    r"postcode|zip)",
    re.IGNORECASE,
)
_COUNT_NAME = re.compile(r"^(n|count|counts|freq|frequency|aantal|number|total|totaal)$", re.I)
_CODE = re.compile(r"^[A-Za-z]{0,4}[-_]?\d{3,}$")


def threshold_of(policy: str) -> int:
    return load_policy(policy).threshold.min_contributors


def _whole(value: str) -> int | None:
    v = value.strip()
    if not v:
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    if f != f or f < 0 or not f.is_integer():  # NaN, negative, fractional
        return None
    return int(f)


def _is_default_index(name: str, values: Sequence[str]) -> bool:
    # pandas' to_csv writes an unnamed 0..n-1 index: positions, not counts.
    return not name.strip() and list(values) == [str(i) for i in range(len(values))]


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
        if _is_default_index(name, col):
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
        whole = [_whole(v) for v in col]
        count_like = filled and all(
            w is not None for w, v in zip(whole, col, strict=True) if v.strip()
        )
        if not count_like or (_NOT_COUNT.search(name) and not _COUNT_NAME.match(name.strip())):
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
