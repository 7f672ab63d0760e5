"""The output record: what was checked, how, with which verdicts, for the airlock.

The record carries the per-cell counts the verdict was based on (rows, contributors,
sums, largest contributions) so that the airlock can re-run every rule server-side from
the record and the policy; it never carries row-level data or contributor ids. Because
it holds the true values of suppressed cells it is itself confidential: ``public()``
gives the view that may travel with a release.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = "trenv.output-record/1"

# Per-cell statistics a suppressed cell's value could be read or narrowed from.
PER_CELL_SECRETS = (
    "value",
    "sum",
    "abs_sum",
    "rows",
    "contributors",
    "near",
    "interval",
    "protection",
    "negatives",
    "missing",
    "all_equal",
    "rounded",
)


class RuleVerdict(BaseModel):
    rule_id: str
    action: Literal["suppress", "review"]
    status: Literal["pass", "fail", "review"]
    flagged_cells: int
    detail: str = ""
    cells: list[list[list[str]]] = Field(default_factory=list)  # [row, column] labels


class CellRecord(BaseModel):
    row: list[str]
    column: list[str]
    margin: bool
    # Whole-number statistics (counts, ...) are ints, so that JSON says 49, not 49.0.
    published: int | float | None  # the safe value (None if suppressed)
    value: int | float | None  # the unmitigated statistic
    rows: int
    contributors: int
    sum: float
    abs_sum: float
    top: list[float]  # largest absolute per-contributor totals, largest first
    negatives: int
    missing: int
    all_equal: bool
    near: int | None = None  # contributors at/around a position statistic
    statistic: str | None = None  # the cell's own statistic (describe); else the record's
    flags: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    suppressed: Literal["primary", "secondary"] | None = None
    interval: tuple[float, float] | None = None  # LP-audited feasible range if suppressed
    rounded: int | float | None = None  # see CellTable.rounded
    protection: tuple[float, float] | None = None  # see CellTable.protection
    row_level: int | None = None  # see CellTable.row_level
    column_level: int | None = None


class CellTable(BaseModel):
    """The cells of a table column by column (compact and fast for large tables)."""

    row: list[list[str]] = Field(default_factory=list)
    column: list[list[str]] = Field(default_factory=list)
    margin: list[bool] = Field(default_factory=list)
    row_margin: list[bool] = Field(default_factory=list)  # the row part is the total
    column_margin: list[bool] = Field(default_factory=list)  # the column part is the total
    # Whole-number statistics (counts, ...) are ints, so that JSON says 49, not 49.0.
    published: list[int | float | None] = Field(default_factory=list)
    value: list[int | float | None] = Field(default_factory=list)
    rows: list[int] = Field(default_factory=list)
    contributors: list[int] = Field(default_factory=list)
    sum: list[float] = Field(default_factory=list)
    abs_sum: list[float] = Field(default_factory=list)
    top: list[list[float]] = Field(default_factory=list)
    negatives: list[int] = Field(default_factory=list)
    missing: list[int] = Field(default_factory=list)
    all_equal: list[bool] = Field(default_factory=list)
    # Contributors at/around a position statistic; None for cells of other statistics.
    near: list[int | None] | None = None
    # Per-cell statistic when the cells are not one table of one statistic (describe: a
    # count, a mean, quantiles, ... per column); None means ``OutputRecord.statistic``.
    statistic: list[str] | None = None
    flags: list[list[str]] = Field(default_factory=list)
    reasons: list[list[str]] = Field(default_factory=list)
    suppressed: list[Literal["primary", "secondary"] | None] = Field(default_factory=list)
    interval: list[tuple[float, float] | None] = Field(default_factory=list)
    # Controlled rounding (``OutputRecord.rounding == "controlled"``): every cell's rounded
    # count before suppression, the solver's choice, which the airlock cannot recompute but
    # verifies (adjacent multiples, additive, no farther from the true table than its own
    # optimum). None for other roundings (recomputed from ``value``); None per cell for
    # cells of other statistics (a describe's mean).
    rounded: list[int | float | None] | None = None
    # The protection levels (below, above its value) the audit demanded of a suppressed
    # cell that a concentration rule flagged (trenv.disclosure.protection); None for the
    # other cells, and the whole list None when no audit ran. The airlock recomputes them
    # from the cell's statistics rather than trusting these.
    protection: list[tuple[float, float] | None] | None = None
    # Tables with subtotals (``OutputRecord.subtotals``): how many of the axis' variables a
    # cell's labels fix, from the left. A leaf row of ``index=[province, municipality]`` has
    # row level 2, a province's subtotal row ``[p, "All"]`` level 1, the grand total row
    # ``["All", ""]`` level 0 (and ``row_margin``). None: no subtotals on that axis (every
    # row is a leaf or the grand total).
    row_level: list[int] | None = None
    column_level: list[int] | None = None

    def __len__(self) -> int:
        return len(self.row)

    def cell(self, i: int) -> CellRecord:
        """One cell as a record (``row_margin``/``column_margin`` fold into ``margin``)."""
        data = {
            name: getattr(self, name)[i]
            for name in CellRecord.model_fields
            if getattr(self, name, None) is not None and name in type(self).model_fields
        }
        return CellRecord(**data)

    def __iter__(self):  # type: ignore[override]
        # Iterating a table yields its cells (not pydantic's field pairs).
        return (self.cell(i) for i in range(len(self)))


class ModelCheck(BaseModel):
    model_type: str
    n_obs: int
    df_resid: float
    level_counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Survival models (``tre.cox``): the events and the fitted coefficients behind
    # ``df_resid`` (events - parameters), so the airlock can check the three agree.
    events: int | None = None
    parameters: int | None = None


class SurvivalStep(BaseModel):
    """One published step of a Kaplan-Meier curve: the people at risk at its start, who
    left in ``(time_from, time]`` (the first step from 0 inclusive) and the estimate at
    ``time``."""

    time_from: float
    time: float
    at_risk: int
    events: int
    censored: int
    survival: float
    ci_lower: float
    ci_upper: float


class SurvivalGroup(BaseModel):
    label: list[str] = Field(default_factory=list)  # the ``by`` values; [] without ``by``
    persons: int | None  # None only in ``public()`` of a withheld group
    withheld: bool = False  # fewer persons than the threshold: no steps published
    cut: bool = False  # the curve ends before the last person left (the tail is withheld)
    steps: list[SurvivalStep] = Field(default_factory=list)


class SurvivalCheck(BaseModel):
    """What the airlock needs to re-check every published step of a survival table."""

    duration: str
    event: str
    by: list[str] = Field(default_factory=list)
    interval: float  # step boundaries are multiples of this
    time_unit: str | None = None  # "days" for date differences; None: the data's own unit
    confidence: float = 0.95
    ci_method: Literal["log-log"] = "log-log"
    groups: list[SurvivalGroup] = Field(default_factory=list)


class OutputRecord(BaseModel):
    schema_version: Literal["trenv.output-record/1"] = SCHEMA_VERSION
    kind: Literal["table", "figure", "model", "survival"]
    statistic: str
    values: str | None = None
    index: list[str] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    contributor: str | None = None
    margins: bool = False
    normalize: str | None = None
    # The axes' variables are nested classifications (coarse to fine, e.g. province then
    # municipality) and the table has a subtotal at every level (cells.row_level/column_level).
    subtotals: bool = False
    structural_zeros: list[list[list[str]]] = Field(default_factory=list)  # [row, column]
    policy: str
    policy_version: str
    policy_parameters: dict[str, Any]
    rounding: str = "none"
    status: Literal["pass", "review", "fail"]
    rules: list[RuleVerdict]
    cells: CellTable = Field(default_factory=CellTable)
    model: ModelCheck | None = None
    survival: SurvivalCheck | None = None
    audit_passed: bool | None = None
    code: str = ""
    trenv_version: str = ""
    files: dict[str, str] = Field(default_factory=dict)  # file name -> sha256
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def flagged(self) -> list[CellRecord]:
        return [self.cells.cell(i) for i, f in enumerate(self.cells.flags) if f]

    def public(self) -> dict[str, Any]:
        """The record without anything a suppressed cell's true value could be read from.

        A suppressed cell keeps only its labels: its statistics, flags and reasons (whose
        texts quote its counts), whether it was a primary or a secondary suppression
        (primary says "below the threshold", an upper bound the audit did not allow for)
        and any rule verdict naming it or its interval are removed.

        A rounded count is an interval, not a value: its true count would undo the
        rounding, and its flags would tell a true 0 (``zeros``) from a small count rounded
        to 0 (``threshold``). So every count cell of a rounded record keeps only its labels
        and its published value, and the verdicts of a rounded record keep their rule,
        action and whether they withheld cells (``fail``), not whether or how many cells
        they flagged (``status`` and ``flagged_cells`` are ``None``).
        """
        data = self.model_dump(mode="json")
        cells = data["cells"]
        hidden = [s is not None for s in cells["suppressed"]]
        stat_of = cells.get("statistic") or [self.statistic] * len(hidden)
        rounded = self.rounding != "none"
        secret = [h or (rounded and st == "count") for h, st in zip(hidden, stat_of, strict=True)]
        for key in PER_CELL_SECRETS:
            if cells.get(key) is not None:
                cells[key] = [None if h else v for h, v in zip(secret, cells[key], strict=True)]
        for key in ("flags", "reasons"):
            cells[key] = [[] if h else v for h, v in zip(secret, cells[key], strict=True)]
        cells["suppressed"] = ["suppressed" if h else None for h in hidden]
        if rounded and any(st == "count" for st in stat_of):
            for verdict in data["rules"]:
                verdict["flagged_cells"] = None
                verdict["detail"] = ""
                if verdict["status"] != "fail":
                    verdict["status"] = None  # "pass" or "review": whether a cell was flagged
        # Individual contributions never leave, even for published cells.
        cells["top"] = [[] for _ in cells["top"]]
        hidden_keys = {
            (tuple(r), tuple(c))
            for r, c, h in zip(cells["row"], cells["column"], hidden, strict=True)
            if h
        }
        for verdict in data["rules"]:
            named = [pair for pair in verdict["cells"] if tuple(map(tuple, pair)) in hidden_keys]
            if named:
                verdict["cells"] = [p for p in verdict["cells"] if p not in named]
                verdict["detail"] = ""  # e.g. differencing quotes the cells' intervals
        for group in (data.get("survival") or {}).get("groups", []):
            if group["withheld"]:
                group["persons"] = None  # a withheld group is smaller than the threshold
        return data
