"""Tables and figures saved with ``tre.save``: match the bytes against the output record,
then re-check the record under the project's policy.

The record was written in the researcher's container, so nothing in it is taken on trust
except as a description to verify: the file's sha256 must be the one the record names, every
published value in the CSV must be the record's published value for that cell (and every
cell the record hides must be empty), and the per-cell counts are run through the project's
own policy again (``trenv.disclosure.recheck``). Verdicts the record carries for rules that
cannot be re-run from it (differencing, class disclosure, shares) can only add findings.
Survival tables and Cox models have their own checks (:mod:`.survival`).
"""

from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from trenv.airlock.checks.grid import csv_rows
from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.survival import cox_findings, survival_findings
from trenv.airlock.checks.tabular import MICRODATA_ROWS
from trenv.disclosure.policy import load_policy
from trenv.disclosure.recheck import RECHECKED, recheck
from trenv.disclosure.record import CellTable, OutputRecord
from trenv.identifiers import PSEUDONYM, is_identifier_name

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

_PUBLISHED_BUT = " is published but "
_AUDIT = re.compile(r"^suppressed cell (\d+),(\d+) ")
Pos = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """How ``DataFrame.to_csv()`` laid the table out: index columns on the left, one header
    row per column level, plus a row of index names when there are several levels."""

    index_columns: int
    column_levels: int

    @property
    def header_rows(self) -> int:
        return self.column_levels + (1 if self.column_levels > 1 else 0)


def layout_of(record: OutputRecord) -> Layout:
    cells = record.cells
    levels = len(cells.column[0]) if len(cells) else max(len(record.columns), 1)
    return Layout(index_columns=max(len(record.index), 1), column_levels=max(levels, 1))


def parse_record(record: bytes) -> OutputRecord:
    """The record, or ``ValueError`` with a reason a checker understands."""
    try:
        rec = OutputRecord.model_validate_json(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"the output record is not valid ({where}: {first['msg']})") from None
    n = len(rec.cells.row)
    for name in CellTable.model_fields:
        value = getattr(rec.cells, name)
        if isinstance(value, list) and len(value) != n:
            raise ValueError(f"the output record's cell list {name!r} has the wrong length")
    return rec


def _same(text: str, published: float | None) -> bool:
    if published is None:
        return not text.strip()
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isclose(value, published, rel_tol=1e-9, abs_tol=1e-12)


def _match_csv(
    record: OutputRecord, rows: list[list[str]], lay: Layout
) -> tuple[list[Finding], dict[int, Pos]]:
    """Findings for differences between the CSV and the record, and where each of the
    record's cells is in the CSV."""
    cells = record.cells
    nidx, nlev = lay.index_columns, lay.column_levels
    if len(rows) < lay.header_rows:
        return [
            finding(
                "record-match",
                "fail",
                "The CSV has fewer header rows than the table in its output record.",
            )
        ], {}
    names = rows[0] if nlev == 1 else rows[nlev]
    if record.index and names[:nidx] != record.index:
        return [
            finding(
                "record-match",
                "fail",
                f"The CSV's index columns are {names[:nidx]}, its output record says "
                f"{record.index}.",
            )
        ], {}
    width = len(rows[0])
    col_keys = {
        j: tuple(rows[k][j] if j < len(rows[k]) else "" for k in range(nlev))
        for j in range(nidx, width)
    }
    lookup = {
        (tuple(r), tuple(c)): i
        for i, (r, c) in enumerate(zip(cells.row, cells.column, strict=True))
    }
    where: dict[int, Pos] = {}
    differs: list[Pos] = []
    extra: list[Pos] = []
    for ri, row in enumerate(rows[lay.header_rows :]):
        if len(row) != width:
            return [
                finding(
                    "record-match",
                    "fail",
                    f"Data row {ri + 1} of the CSV has {len(row)} fields, the header has {width}.",
                )
            ], where
        key = tuple(row[:nidx])
        for j in range(nidx, width):
            i = lookup.get((key, col_keys[j]))
            if i is None:
                extra.append((ri, j))
                continue
            where[i] = (ri, j)
            if not _same(row[j], cells.published[i]):
                differs.append((ri, j))
    out: list[Finding] = []
    if differs:
        out.append(
            finding(
                "record-match",
                "fail",
                f"{len(differs)} values in the CSV differ "
                "from the published values in its output record (the file was "
                "edited after tre.save, or hidden cells were filled in).",
                differs,
            )
        )
    if extra:
        out.append(
            finding(
                "record-match",
                "fail",
                f"{len(extra)} cells of the CSV are not in its output record.",
                extra,
            )
        )
    missing = len(cells) - len(where)
    if missing:
        out.append(
            finding(
                "record-match",
                "fail",
                f"{missing} cells of the output record are missing from the CSV.",
            )
        )
    return out, where


def _audit_positions(record: OutputRecord, where: dict[int, Pos]) -> dict[Pos, Pos]:
    """The LP audit names cells by (row, column) in its own grid with margins last; map
    them to CSV positions the same way ``recheck._audit`` builds that grid."""
    cells = record.cells
    rows = list(
        dict.fromkeys(tuple(r) for r, m in zip(cells.row, cells.row_margin, strict=True) if not m)
    )
    cols = list(
        dict.fromkeys(
            tuple(c) for c, m in zip(cells.column, cells.column_margin, strict=True) if not m
        )
    )
    out: dict[Pos, Pos] = {}
    for i in range(len(cells)):
        ri = len(rows) if cells.row_margin[i] else rows.index(tuple(cells.row[i]))
        ci = len(cols) if cells.column_margin[i] else cols.index(tuple(cells.column[i]))
        if i in where:
            out[(ri, ci)] = where[i]
    return out


def _recheck_findings(record: OutputRecord, policy: str, where: dict[int, Pos]) -> list[Finding]:
    table = record if record.kind == "table" else record.model_copy(update={"kind": "table"})
    try:
        result = recheck(table, policy)
    except Exception as exc:  # the record is untrusted input; any crash is a refusal
        return [
            finding(
                "recheck",
                "fail",
                f"The output record could not be re-checked ({type(exc).__name__}: {exc}).",
            )
        ]
    pol = load_policy(policy)
    if result.ok:
        return [
            finding(
                "recheck",
                "pass",
                f"Every published cell passes the cell rules of "
                f"policy {pol.name} v{pol.version} again on the server.",
            )
        ]
    cells = record.cells
    by_prefix = {
        f"cell {cells.row[i]}/{cells.column[i]}{_PUBLISHED_BUT}": i for i in range(len(cells))
    }
    audit_at = (
        _audit_positions(record, where) if any(_AUDIT.match(p) for p in result.problems) else {}
    )
    out: list[Finding] = []
    for problem in result.problems:
        cut = problem.find(_PUBLISHED_BUT)
        if problem.startswith("cell ") and cut > 0:
            head = problem[: cut + len(_PUBLISHED_BUT)]
            rule = problem[len(head) :].split(":", 1)[0]
            i = by_prefix.get(head)
            pos = [where[i]] if i is not None and i in where else []
            out.append(
                finding(f"recheck-{rule}", "fail", f"Re-checked under {pol.name}: {problem}.", pos)
            )
            continue
        m = _AUDIT.match(problem)
        if m:
            at = audit_at.get((int(m.group(1)), int(m.group(2))))
            out.append(
                finding(
                    "recheck-secondary",
                    "fail",
                    f"Re-checked under {pol.name}: {problem}.",
                    [at] if at else [],
                )
            )
            continue
        out.append(finding("recheck", "fail", f"Re-checked under {pol.name}: {problem}."))
    return out


def _notebook_verdicts(record: OutputRecord, where: dict[int, Pos]) -> list[Finding]:
    """Rules the server cannot re-run from the record: the notebook's own verdict counts
    against release (never for it)."""
    cells = record.cells
    lookup = {
        (tuple(r), tuple(c)): i
        for i, (r, c) in enumerate(zip(cells.row, cells.column, strict=True))
    }
    out = []
    for v in record.rules:
        if v.rule_id in RECHECKED or v.status == "pass":
            continue
        status = "fail" if v.rule_id == "differencing" and v.status == "fail" else "review"
        pos = []
        for pair in v.cells:
            if len(pair) == 2:
                i = lookup.get((tuple(pair[0]), tuple(pair[1])))
                if i is not None and i in where:
                    pos.append(where[i])
        detail = f": {v.detail}" if v.detail else ""
        out.append(
            finding(
                f"notebook-{v.rule_id}",
                status,
                f"The notebook's {v.rule_id} check "
                f"flagged {v.flagged_cells} cells{detail} (computed in the "
                "researcher's session; a checker must confirm).",
                pos,
            )
        )
    return out


def _label_findings(record: OutputRecord, rows: list[list[str]], lay: Layout) -> list[Finding]:
    out = []
    named = [n for n in [*record.index, *record.columns] if is_identifier_name(n)]
    if named:
        out.append(
            finding(
                "identifier-labels",
                "fail",
                f"The table is broken down by "
                f"{', '.join(named)}, which identifies people: its labels list them.",
            )
        )
    data = rows[lay.header_rows :]
    hits = [(i, j) for i, row in enumerate(data) for j, v in enumerate(row) if PSEUDONYM.search(v)]
    in_header = any(PSEUDONYM.search(v) for row in rows[: lay.header_rows] for v in row)
    if hits or in_header:
        out.append(
            finding(
                "pseudonyms", "fail", "Labels of the table look like the TRE's pseudonyms.", hits
            )
        )
    if len(data) > MICRODATA_ROWS:
        out.append(
            finding(
                "row-limit",
                "review",
                f"{len(data)} rows: this looks like row-level "
                f"data rather than a summary (more than {MICRODATA_ROWS} rows).",
            )
        )
    return out


def _model_findings(record: OutputRecord, policy: str) -> list[Finding]:
    pol = load_policy(policy)
    model = record.model
    if model is None:
        return [finding("model", "fail", "The model summary's record has no model details.")]
    out = []
    if model.df_resid < pol.model.min_dof:
        out.append(
            finding(
                "model-dof",
                "fail",
                f"The model has {model.df_resid:g} residual "
                f"degrees of freedom; policy {pol.name} needs {pol.model.min_dof}.",
            )
        )
    small = [
        f"{var}={level} ({n})"
        for var, levels in model.level_counts.items()
        for level, n in levels.items()
        if n < pol.model.min_level_count
    ]
    if small:
        out.append(
            finding(
                "model-levels",
                "fail",
                f"Categories with fewer than "
                f"{pol.model.min_level_count} observations: {', '.join(small[:10])}.",
            )
        )
    out.append(
        finding(
            "model-review",
            "review",
            "Model summaries are released after a "
            "checker has read them; the values cannot be re-derived from the record.",
        )
    )
    return out


def _figure_visual() -> Finding:
    return finding(
        "figure-visual",
        "review",
        "A checker must compare the picture with "
        "the checked counts it was drawn from: the image itself cannot be "
        "verified automatically.",
    )


def check_saved(frozen: FrozenFile, record_bytes: bytes, policy: str) -> tuple[list[Finding], int]:
    """Findings for a file saved by ``tre.save`` and the header rows of its CSV preview."""
    try:
        record = parse_record(record_bytes)
    except ValueError as exc:
        return [finding("record", "fail", f"{str(exc).capitalize()}.")], 1
    name = posixpath.basename(frozen.path)
    if name not in record.files:
        named = ", ".join(sorted(record.files)) or "no files"
        return [
            finding(
                "record",
                "fail",
                f"The output record next to {name} describes {named}, not this file.",
            )
        ], 1
    # The record names the file as tre.save wrote it; an image is frozen re-encoded, so
    # compare what was read from the workspace.
    if record.files[name] != frozen.read_sha256:
        return [
            finding(
                "record-hash",
                "fail",
                f"{name} was changed after tre.save wrote it: "
                "its sha256 is not the one in its output record.",
            )
        ], 1
    as_read = " as read (then re-encoded)" if frozen.reencoded is not None else ""
    out = [
        finding("record-hash", "pass", f"{name}{as_read} is byte for byte the file tre.save wrote.")
    ]
    if frozen.kind == "figure":
        if record.kind == "survival":  # a Kaplan-Meier figure: drawn from its step table
            return [*out, *survival_findings(record, policy, None), _figure_visual()], 0
        if record.kind != "figure":
            return [
                *out,
                finding(
                    "record",
                    "fail",
                    f"The output record of {name} is a {record.kind}, not a figure.",
                ),
            ], 0
        out += _recheck_findings(record, policy, {})
        out.append(_figure_visual())
        return out, 0
    rows = csv_rows(frozen.data)
    if record.kind == "model":
        return [*out, *_model_findings(record, policy), *cox_findings(record, rows)], 1
    if record.kind == "survival":
        labels = Layout(index_columns=len(record.index) + 1, column_levels=1)
        found = survival_findings(record, policy, rows)
        return [*out, *found, *_label_findings(record, rows, labels)], 1
    lay = layout_of(record)
    problems, where = _match_csv(record, rows, lay)
    if problems:
        return [*out, *problems], lay.header_rows
    out.append(
        finding(
            "record-match",
            "pass",
            "Every value in the CSV is the published value "
            "of its output record, and every hidden cell is empty.",
        )
    )
    out += _recheck_findings(record, policy, where)
    out += _notebook_verdicts(record, where)
    out += _label_findings(record, rows, lay)
    return out, lay.header_rows
