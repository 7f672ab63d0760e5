"""A checked table and its rules as tau-ARGUS 4.2 batch input, so a CBS checker can run
tau-ARGUS on exactly the same table and rules and compare its pattern with trenv's.

:func:`write_batch` writes into one folder (``<name>`` is a plain file stem):

- ``<name>.tab``: the table, one cell per line, every cell including totals and subtotals,
  with the true (unsuppressed, unrounded) values. CONFIDENTIAL: never a release candidate.
- ``<name>.rda``: the metadata: the spanning variables (total code, hierarchy), the
  response, the frequency (trenv's distinct contributors: people, not rows) and the top-n
  contributions (magnitude tables).
- ``<name>-<variable>.hrc``: the hierarchy of an axis of nested variables (a table with
  subtotals).
- ``<name>.hst``: trenv's suppression pattern as a-priori statuses with trenv's own
  protection requirement per cell.
- ``<name>.arb``: tau-ARGUS's own primary and secondary suppression under the translated
  rules (the independent cross-check); ``<name>-audit.arb``: the same after loading the
  a-priori file, so that whatever tau-ARGUS adds is what it finds missing in trenv's pattern.
- ``codes.csv``: the mapping from trenv's labels (arbitrary strings) to the codes used in
  the files, and ``README.txt``: what was translated, what tau-ARGUS cannot express, and
  how to run it.

Written here rather than with a library: no Python package writes tau-ARGUS's tabular
input (piargus, the one wrapper, runs tau-ARGUS itself and builds its input from microdata).

Where each format detail comes from. "Manual" is the tau-ARGUS 4.1 user's manual
(TauManualV4.1.pdf, the newest shipped in the sdcTools/tauargus repository); "4.2" is the
source of tau-ARGUS 4.2.5 (sdcTools/tauargus tag v4.2.5.2: src/tauargus/model/*.java) and of
its library (sdcTools/libtauargus, src/*.cpp), which decide where the manual is silent:

- .tab: one cell per line, fields in the order of the .rda variables, separated by the
  .rda's <SEPARATOR>; every cell including all (sub)totals, as tau-ARGUS computes no totals
  (manual 4.3.2). A field is read with ``Tokenizer.nextField`` (quotes around a field are
  stripped, no escaping exists); numbers with ``StrUtils.toDouble``, which turns ``,``
  into ``.`` (so ``;`` separates fields here and numbers use ``.``). A cell with frequency
  0 and value 0 is not stored and becomes Empty (4.2 TableSet.buildCell). The sum of the
  top-n contributions may not exceed the cell's value, and top-n must be in descending
  order (buildCell). Non-hierarchical codes are left-padded to the longest code
  (Variable.normaliseCode): every code here has one width, so nothing is padded.
  Totals must equal the sum of their cells to 2e-14 relatively (libtauargus TestTable,
  DBL_EQ), so margins are written as the exact decimal sums of the written cells.
- .rda for tabular data: <SEPARATOR>, a variable name on a line of its own followed by
  indented keywords <RECODEABLE> <TOTCODE> <HIERARCHICAL> <HIERCODELIST> <HIERLEADSTRING>,
  <NUMERIC> <DECIMALS>, <FREQUENCY>, <MAXSCORE> (the first is the largest contribution)
  (manual 5.1.4; 4.2 Metadata.readTableMetadata). A name ends at the first space; quoted
  keyword arguments lose their quotes.
- .hrc: a code per line, one ``@`` (the <HIERLEADSTRING>) per level below the first,
  parents before their children, the total never listed; a level may deepen by one only;
  lines up to 200 characters, codes up to 100, at most 10 levels (manual 5.2; libtauargus
  CVariable::SetCodeList, defines.h MAXCODEWIDTH, MAXLEVEL).
- .hst: the spanning codes then a command, separated by the separator named in the batch
  (the first line must contain it); ``U`` makes a cell unsafe (manual), ``PL;lower;upper``
  sets its protection levels, allowed for unsafe cells only (manual 5.6; 4.2
  TableSet.processAprioryFile). The a-priori secondary statuses ``M``/``ML`` of 4.2 are not
  used: <SUPPRESS> first undoes every secondary suppression (4.2 batch.suppressBatch ->
  TableService.undoSuppress; libtauargus CTable::UndoSecondarySuppress), so trenv's
  secondaries are passed as unsafe cells with protection levels 0.
- .arb: one command per line, ``//`` starts a comment line; <OPENTABLEDATA>,
  <OPENMETADATA>, <SPECIFYTABLE> ``"var""var"|"response"|"shadow"|"cost"``, <SAFETYRULE>,
  <READTABLE> (0: check additivity), <APRIORY> ``"file",table,"separator",IgnoreError,
  ExpandTrivial``, <SOLVER>, <SUPPRESS>, <WRITETABLE> ``(table,type,options,"file")`` and
  <GOINTERACTIVE>, in that order (manual 5.7; 4.2 batch.runBatchProcess enforces it). A
  file name without a path is looked up beside the .arb (batch.giveRightFile).
- Safety rules (manual 4.4.4 and 5.7; libtauargus Table.cpp, DataCell.cpp): P(p,n) is
  unsafe when total - x1 - ... - x(n+1) < p% of x1, which for n = 1 is trenv's p% rule;
  NK(n,k) is unsafe when the n largest hold *more than* k% (trenv: k or more); FREQ(m,r)
  is unsafe when 0 < frequency < m, as trenv's threshold; all parameters are integers
  (Integer.parseInt). A safety range r% makes the protection levels r% of the cell's value
  on *each* side (CTable::SetProtectionLevelCell), so trenv's whole width w becomes w/2.
- Output: <WRITETABLE> type 3 (code-value) with ``AS+`` (value and status), ``FL+``
  (names on the first line), ``QU+`` (quoted codes): the codes, the value (``-`` when
  empty) and the status number, comma-separated whatever the input separator
  (libtauargus WriteCellRecords/WriteCSVCell, m_ValueSeparator). Status numbers: 4.2
  CellStatus.java (:data:`STATUSES`). Read back by :mod:`trenv.disclosure.tauargus_compare`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Literal

from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.policy import Policy
from trenv.disclosure.record import OutputRecord

TAU_ARGUS_VERSION = "4.2"
# Where the researcher API writes tau-ARGUS input in a workspace: never under outputs/,
# and the airlock refuses any request file under it (the files hold unsuppressed values).
WORKSPACE_FOLDER = "tau-argus"
TOTAL_CODE = "Total"
SEPARATOR = ";"
LEAD = "@"
VALUE, FREQ = "Value", "Freq"
MAX_LEVELS = 10  # libtauargus MAXLEVEL
MAX_DECIMALS = 6
SUPPRESS_METHODS = ("MOD", "GH", "OPT")
TABLE_STATISTICS = ("count", "sum")

# Cell statuses of tau-ARGUS 4.2 (CellStatus.java); the number is what AS+ writes.
STATUSES: dict[int, str] = {
    1: "Safe",
    2: "Safe (manual)",
    3: "Unsafe",
    4: "Unsafe (request)",
    5: "Unsafe (freq)",
    6: "Unsafe (zero cell)",
    7: "Unsafe (singleton)",
    8: "Unsafe (singleton) (manual)",
    9: "Unsafe (manual)",
    10: "Protected",
    11: "Secondary",
    12: "Secondary (from manual)",
    13: "Empty (non-struct.)",
    14: "Empty",
}
PRIMARY_STATUSES = frozenset(range(3, 10))
SECONDARY_STATUSES = frozenset({11, 12})
MANUAL_UNSAFE = 9  # what the a-priori file's U gives: trenv's own pattern in the audit run
EMPTY_STATUSES = frozenset({13, 14})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# trenv rule id -> what tau-ARGUS has instead, when it has nothing equivalent.
UNTRANSLATED: dict[str, str] = {
    "zeros": "tau-ARGUS never suppresses an empty cell (status Empty); its ZERO rule is "
    "about non-empty cells whose contributions are all zero, a different rule",
    "negative": "tau-ARGUS has no rule on negative values",
    "missing": "tau-ARGUS's MIS is about missing codes of the spanning variables, not "
    "missing values left out of a cell",
    "class-disclosure": "tau-ARGUS has no rule for a cell holding a whole row or column",
    "constant-value": "tau-ARGUS has no rule for cells whose contributors all have one value",
    "shares": "tau-ARGUS protects the counts, not the shares of a normalised table",
    "differencing": "tau-ARGUS protects one table at a time (linked tables must share "
    "their spanning variables); trenv's check across saved outputs has no counterpart",
}


@dataclass(frozen=True)
class Axis:
    """One spanning variable of the tau-ARGUS table: trenv's axis variables as one."""

    name: str  # the tau-ARGUS variable name
    variables: tuple[str, ...]  # trenv's variables on this axis (coarse to fine)
    codes: dict[tuple[str, ...], str]  # label path -> code, in .hrc order
    hierarchical: bool
    leaves: dict[str, tuple[str, ...]]  # code (and TOTAL_CODE) -> the basic codes it adds up

    def level(self, path: tuple[str, ...]) -> int:
        return len(path) if self.hierarchical else 1

    def is_leaf(self, code: str) -> bool:
        return self.leaves[code] == (code,)

    def hrc(self) -> str:
        return "".join(f"{LEAD * (len(p) - 1)}{code}\n" for p, code in self.codes.items())


@dataclass(frozen=True)
class TauCell:
    index: int  # position in the record's cell list
    codes: tuple[str, ...]  # one per axis; TOTAL_CODE for a total


@dataclass(frozen=True)
class TauTable:
    """How a record's table is laid out for tau-ARGUS (a pure function of the record, so
    the reader maps tau-ARGUS's codes back without a file of its own)."""

    axes: tuple[Axis, ...]
    cells: tuple[TauCell, ...]
    decimals: int
    tops: int  # top-n contributions written per cell (0: none)
    written: dict[tuple[str, ...], Decimal]  # codes -> value as written

    def at(self) -> dict[tuple[str, ...], int]:
        return {cell.codes: cell.index for cell in self.cells}


# --- the table ---------------------------------------------------------------------------


def _safe_name(raw: str, taken: set[str]) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw).strip("_")[:30] or "var"
    if not name[0].isalpha():
        name = f"v_{name}"[:30]
    while name.lower() in taken:
        name = f"{name[:27]}_x"
    taken.add(name.lower())
    return name


def _axis(
    record: OutputRecord,
    which: Literal["row", "column"],
    variables: Sequence[str],
    taken: set[str],
) -> Axis:
    cells = record.cells
    labels = cells.row if which == "row" else cells.column
    margin = cells.row_margin if which == "row" else cells.column_margin
    levels = cells.row_level if which == "row" else cells.column_level
    hierarchical = levels is not None
    paths: dict[tuple[str, ...], None] = {}
    for i in range(len(cells)):
        if hierarchical:
            assert levels is not None
            level = levels[i]
            if not 0 <= level <= len(variables):
                raise DisclosureInputError(
                    f"cell {i} has {which} level {level}; an axis of {len(variables)} "
                    "variables has levels 0 (total) to its number of variables"
                )
            if (level == 0) != margin[i]:
                raise DisclosureInputError(
                    f"cell {i}: {which} level 0 and the {which} total must go together"
                )
            if level:
                paths.setdefault(tuple(labels[i][:level]), None)
        elif not margin[i]:
            paths.setdefault(tuple(labels[i]), None)
    if hierarchical:
        if len(variables) > MAX_LEVELS:
            raise DisclosureInputError(
                f"tau-ARGUS takes at most {MAX_LEVELS} levels in a hierarchy; the {which} "
                f"axis has {len(variables)}"
            )
        for path in paths:
            if len(path) > 1 and path[:-1] not in paths:
                raise DisclosureInputError(
                    f"the {which} {list(path)} has no subtotal row for {list(path[:-1])}; "
                    "a table with subtotals has one at every level"
                )
        ordered = _depth_first(list(paths))
    else:
        ordered = list(paths)
    if not ordered:
        raise DisclosureInputError(f"the table has no {which} categories")
    width = max(3, len(str(len(ordered))))
    prefix = "R" if which == "row" else "C"
    codes = {path: f"{prefix}{k + 1:0{width}d}" for k, path in enumerate(ordered)}
    name = _safe_name("_".join(variables) or which, taken)
    return Axis(name, tuple(variables), codes, hierarchical, _leaves(codes, hierarchical))


def _leaves(codes: dict[tuple[str, ...], str], hierarchical: bool) -> dict[str, tuple[str, ...]]:
    if not hierarchical:
        out = {code: (code,) for code in codes.values()}
        out[TOTAL_CODE] = tuple(codes.values())
        return out
    depth = max(len(p) for p in codes)
    found: dict[str, list[str]] = {TOTAL_CODE: [], **{code: [] for code in codes.values()}}
    for path, code in codes.items():
        if len(path) == depth:
            found[TOTAL_CODE].append(code)
            for k in range(1, depth + 1):
                found[codes[path[:k]]].append(code)
    return {code: tuple(leaves) for code, leaves in found.items()}


def _depth_first(paths: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Parents before their children, siblings in order of first appearance."""
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path in paths:
        children.setdefault(path[:-1], []).append(path)
    out: list[tuple[str, ...]] = []

    def visit(parent: tuple[str, ...]) -> None:
        for child in children.get(parent, []):
            out.append(child)
            visit(child)

    visit(())
    return out


def _decimals(values: list[float]) -> int:
    """The fewest decimals (up to MAX_DECIMALS) that write every value exactly enough."""
    for d in range(MAX_DECIMALS + 1):
        if all(abs(v - round(v, d)) <= 1e-9 * max(1.0, abs(v)) for v in values):
            return d
    return MAX_DECIMALS


def _quantum(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def tau_table(record: OutputRecord) -> TauTable:
    """The record's table as tau-ARGUS takes it, or DisclosureInputError naming why not."""
    if record.kind != "table":
        raise DisclosureInputError(
            f"this output is a {record.kind}, not a table: tau-ARGUS protects tables of "
            "counts or sums; cross-check the table behind it instead"
        )
    if record.cells.statistic is not None:
        raise DisclosureInputError(
            "a describe() output mixes statistics per cell; tau-ARGUS protects one table of "
            "counts or sums: make that table with tre.crosstab or tre.pivot_table"
        )
    if record.statistic not in TABLE_STATISTICS:
        raise DisclosureInputError(
            f"tau-ARGUS cannot protect a table of {record.statistic!r}: it protects additive "
            "tables (counts and sums). A table of means is protected through its table of "
            "sums; minima, maxima, medians and quantiles have no tau-ARGUS counterpart"
        )
    if not record.margins:
        raise DisclosureInputError(
            "this table was made without margins: tau-ARGUS protects a table with its "
            "totals (and trenv's secondary suppression needs them too); make it with "
            "margins=True"
        )
    cells = record.cells
    if not len(cells):
        raise DisclosureInputError("the record lists no cells")
    taken = {VALUE.lower(), FREQ.lower()} | {f"top{k}" for k in range(1, 11)}
    axes = [_axis(record, "row", record.index or ["rows"], taken)]
    if record.columns:
        axes.append(_axis(record, "column", record.columns, taken))
    by_codes: dict[tuple[str, ...], int] = {}
    tau_cells = []
    for i in range(len(cells)):
        codes = [_code(axes[0], cells.row[i], cells.row_margin[i], cells.row_level, i)]
        if record.columns:
            codes.append(
                _code(axes[1], cells.column[i], cells.column_margin[i], cells.column_level, i)
            )
        key = tuple(codes)
        if key in by_codes:
            raise DisclosureInputError(
                f"the record lists cell {cells.row[i]}/{cells.column[i]} twice"
            )
        by_codes[key] = i
        tau_cells.append(TauCell(i, key))
    expected = math.prod(len(a.codes) + 1 for a in axes)
    if len(by_codes) != expected:
        raise DisclosureInputError(
            f"the record has {len(by_codes)} of the table's {expected} cells; tau-ARGUS needs "
            "every cell, totals and subtotals included"
        )
    inner = [c for c in tau_cells if all(a.is_leaf(k) for a, k in zip(axes, c.codes, strict=True))]
    raw = [cells.value[c.index] for c in inner]
    if any(v is not None and not math.isfinite(v) for v in raw):
        raise DisclosureInputError("the record holds a value that is not a finite number")
    decimals = 0 if record.statistic == "count" else _decimals([v for v in raw if v is not None])
    q = _quantum(decimals)
    leaf_value = {c.codes: Decimal(repr(cells.value[c.index] or 0.0)).quantize(q) for c in inner}
    written: dict[tuple[str, ...], Decimal] = {}
    for cell in tau_cells:
        total = sum((leaf_value[c] for c in _combinations(axes, cell.codes)), Decimal(0))
        recorded = cells.value[cell.index] or 0.0
        slack = 1e-6 * max(1.0, abs(recorded), cells.abs_sum[cell.index])
        if abs(float(total) - recorded) > slack:
            raise DisclosureInputError(
                f"cell {cells.row[cell.index]}/{cells.column[cell.index]} is {recorded} in the "
                f"record but its cells add up to {total}: the record is not one additive table"
            )
        written[cell.codes] = total
    with_tops = record.statistic == "sum" and not any(cells.negatives)
    tops = max((len(t) for t in cells.top), default=0) if with_tops else 0
    return TauTable(tuple(axes), tuple(tau_cells), decimals, tops, written)


def _combinations(axes: Sequence[Axis], codes: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The inner cells a cell adds up."""
    combos: list[tuple[str, ...]] = [()]
    for axis, code in zip(axes, codes, strict=True):
        combos = [(*c, leaf) for c in combos for leaf in axis.leaves[code]]
    return combos


def _code(axis: Axis, labels: list[str], margin: bool, levels: list[int] | None, i: int) -> str:
    if margin:
        return TOTAL_CODE
    path = tuple(labels[: levels[i]]) if levels is not None else tuple(labels)
    return axis.codes[path]


# --- the rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    safety_rule: str  # the <SAFETYRULE> argument
    translated: list[str]  # one line per translated rule, for the README
    untranslated: list[str]  # one line per trenv rule tau-ARGUS cannot express
    range_percent: int  # tau-ARGUS's safety range (each side) for trenv's width


def _percent_up(x: float) -> int:
    return math.ceil(round(x * 100, 9))


def translate_rules(record: OutputRecord, policy: Policy) -> Rules:
    """The policy's rules as tau-ARGUS safety rules, and those it cannot express."""
    magnitude = record.statistic == "sum"
    tops_ok = magnitude and not any(record.cells.negatives)
    width = policy.secondary.relative_width
    range_percent = _percent_up(width / 2)
    flagged: dict[str, int] = {}
    for flags in record.cells.flags:
        for rule_id in flags:
            flagged[rule_id] = flagged.get(rule_id, 0) + 1
    rules: list[str] = []
    done: list[str] = []
    missing: list[str] = []

    def note(rule_id: str, why: str) -> None:
        n = flagged.get(rule_id, 0)
        missing.append(f"{rule_id} ({n} cell(s) flagged in this table): {why}")

    t = policy.threshold
    if t.action == "suppress":
        rules.append(f"FREQ({t.min_contributors},{range_percent})")
        done.append(
            f"threshold (fewer than {t.min_contributors} contributors) -> "
            f"FREQ({t.min_contributors},{range_percent}): unsafe when 0 < frequency < "
            f"{t.min_contributors}; the frequency is trenv's distinct contributors"
        )
    elif t.action == "review":
        note("threshold", "only reviewed under this policy, so not applied in tau-ARGUS")
    d = policy.dominance
    if magnitude and d.action == "suppress":
        k = round(d.k * 100, 9)
        k_int = int(k) if k == int(k) else math.floor(k)
        if tops_ok:
            rules.append(f"NK({d.n},{k_int})")
            done.append(
                f"dominance-nk (n={d.n}, k={d.k:g}) -> NK({d.n},{k_int}): tau-ARGUS flags more "
                f"than {k_int}%, trenv {d.k:.0%} or more (a cell at exactly the limit differs)"
                + ("" if k == int(k) else "; k rounded down to a whole percentage (stricter)")
            )
        else:
            note("dominance-nk", _NEGATIVES)
    elif magnitude and d.action == "review":
        note("dominance-nk", "only reviewed under this policy, so not applied in tau-ARGUS")
    p = policy.p_percent
    if magnitude and p.action == "suppress":
        p_int = _percent_up(p.p)
        if tops_ok:
            rules.append(f"P({p_int},1)")
            done.append(
                f"p-percent (p={p.p:g}) -> P({p_int},1): unsafe when total - largest - second "
                f"< {p_int}% of the largest (one intruder, the second largest), as in trenv"
                + ("" if p_int == round(p.p * 100, 9) else "; p rounded up (stricter)")
            )
        else:
            note("p-percent", _NEGATIVES)
    elif magnitude and p.action == "review":
        note("p-percent", "only reviewed under this policy, so not applied in tau-ARGUS")
    for rule_id, field, applies in (
        ("zeros", "zeros", True),
        ("negative", "negative", magnitude),
        ("missing", "missing", magnitude),
        ("class-disclosure", "class_disclosure", not magnitude),
        ("constant-value", "constant_value", magnitude),
        ("shares", "shares", record.normalize is not None),
    ):
        action = getattr(policy, field).action
        if applies and action != "off":
            note(rule_id, f"{action} under this policy; {UNTRANSLATED[rule_id]}")
    if any(v.rule_id == "differencing" for v in record.rules) or flagged.get("differencing"):
        note("differencing", UNTRANSLATED["differencing"])
    rules.append(f"MAN({range_percent})")
    done.append(
        f"secondary width max({policy.secondary.count_width:g}, {width:g} x value) -> "
        f"safety range {range_percent}% on each side (FREQ and MAN): tau-ARGUS's protection "
        "levels are a percentage of the cell on each side, so trenv's whole width w is w/2 "
        "per side; trenv's absolute minimum width for counts has no rule parameter. The "
        "audit batch carries trenv's exact width per suppressed cell in the a-priori file"
    )
    return Rules("|".join(rules), done, missing, range_percent)


_NEGATIVES = (
    "the table has negative values: tau-ARGUS refuses top-n contributions that add up to "
    "more than the cell's (signed) value, and trenv's dominance and p% are on absolute "
    "contributions; the cells trenv flagged reach tau-ARGUS through the audit's a-priori file"
)


# --- writing -----------------------------------------------------------------------------


def _num(x: Decimal) -> str:
    return format(x, "f")


def _floor(x: float, decimals: int) -> Decimal:
    return Decimal(repr(x)).quantize(_quantum(decimals), rounding=ROUND_FLOOR)


def tab_text(record: OutputRecord, table: TauTable) -> str:
    cells = record.cells
    lines = []
    for cell in table.cells:
        value = table.written[cell.codes]
        freq = cells.contributors[cell.index] if cells.rows[cell.index] else 0
        fields = [*cell.codes, _num(value), str(freq)]
        remaining = value
        top = cells.top[cell.index]
        for k in range(table.tops):
            # Rounded down and capped by what is left of the value: tau-ARGUS refuses top-n
            # that add up to more than the cell (TableSet.buildCell).
            t = min(_floor(top[k], table.decimals) if k < len(top) else Decimal(0), remaining)
            t = max(t, Decimal(0))
            remaining -= t
            fields.append(_num(t))
        lines.append(SEPARATOR.join(fields))
    return "\n".join(lines) + "\n"


def rda_text(name: str, table: TauTable) -> str:
    out = [f'<SEPARATOR> "{SEPARATOR}"']
    for axis in table.axes:
        out += [axis.name, "    <RECODEABLE>", f'    <TOTCODE> "{TOTAL_CODE}"']
        if axis.hierarchical:
            out += [
                "    <HIERARCHICAL>",
                f'    <HIERCODELIST> "{hrc_name(name, axis)}"',
                f'    <HIERLEADSTRING> "{LEAD}"',
            ]
    out += [VALUE, "    <NUMERIC>", f"    <DECIMALS> {table.decimals}", FREQ, "    <FREQUENCY>"]
    for k in range(table.tops):
        out += [f"Top{k + 1}", "    <MAXSCORE>"]
    return "\n".join(out) + "\n"


def hrc_name(name: str, axis: Axis) -> str:
    return f"{name}-{axis.name}.hrc"


def required_width(value: float, statistic: str, policy: Policy) -> float:
    """trenv's required interval width for a suppressed cell (as check_table sets it)."""
    width = policy.secondary.relative_width * abs(value)
    if statistic == "count":
        width = max(width, policy.secondary.count_width)
    return width


def hst_text(record: OutputRecord, table: TauTable, policy: Policy) -> tuple[str, int]:
    """trenv's pattern as a-priori statuses, and how many suppressed empty cells it leaves
    out (tau-ARGUS cannot make an empty cell unsafe)."""
    cells = record.cells
    nonneg = record.statistic == "count" or not any(cells.negatives)
    lines: list[str] = []
    empty = 0
    q = _quantum(max(table.decimals, 2))
    for cell in table.cells:
        kind = cells.suppressed[cell.index]
        if kind is None:
            continue
        if not cells.rows[cell.index]:
            empty += 1
            continue
        key = SEPARATOR.join(cell.codes)
        value = float(table.written[cell.codes])
        if kind == "primary":
            width = required_width(value, record.statistic, policy)
            lower = min(width / 2, abs(value)) if nonneg else width / 2
            upper = width - lower
        else:
            lower = upper = 0.0  # a secondary only needs to stay hidden
        lo = Decimal(repr(lower)).quantize(q)
        hi = Decimal(repr(upper)).quantize(q, rounding=ROUND_CEILING)
        lines += [
            f"{key}{SEPARATOR}U",
            f"{key}{SEPARATOR}PL{SEPARATOR}{_num(lo)}{SEPARATOR}{_num(hi)}",
        ]
    return ("\n".join(lines) + "\n" if lines else ""), empty


def _suppress(method: str, minutes: int) -> str:
    if method == "MOD":
        # MOD(table, minutes per subtable, singleton-singleton, singleton-multiple, min freq)
        return f"MOD(1,{minutes},1,1,1)"
    if method == "GH":
        # GH(table, a-priori bounds %, model size 0 = normal, apply singleton)
        return "GH(1,100,0,1)"
    return f"OPT(1,{minutes})"


def output_name(name: str, audit: bool) -> str:
    return f"{name}-audit-safe.csv" if audit else f"{name}-safe.csv"


def arb_text(
    name: str,
    table: TauTable,
    rules: Rules,
    *,
    audit: bool,
    method: str,
    minutes: int,
    interactive: bool,
    header: str,
) -> str:
    spanning = "".join(f'"{a.name}"' for a in table.axes)
    lines = [
        *(f"// {line}" for line in header.splitlines()),
        f'<OPENTABLEDATA> "{name}.tab"',
        f'<OPENMETADATA> "{name}.rda"',
        f'<SPECIFYTABLE> {spanning}|"{VALUE}"|"{VALUE}"|"{VALUE}"',
        f"<SAFETYRULE> {rules.safety_rule}",
        "<READTABLE> 0",
    ]
    if audit:
        lines += [
            "// trenv's pattern: U (unsafe) with trenv's protection levels (PL) per cell",
            f'<APRIORY> "{name}.hst",1,"{SEPARATOR}",0,0',
        ]
    lines += [
        "// FREE uses the solver shipped with tau-ARGUS; CPLEX or XPRESS if licensed",
        "<SOLVER> FREE",
        f"<SUPPRESS> {_suppress(method, minutes)}",
        "// code-value file with the status number of every cell (AS+), names on line 1",
        f'<WRITETABLE> (1,3,AS+FL+QU+,"{output_name(name, audit)}")',
    ]
    if interactive:
        lines.append("<GOINTERACTIVE>")
    return "\n".join(lines) + "\n"


def codes_csv(table: TauTable) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["variable", "code", "level", "trenv_variables", "labels"])
    for axis in table.axes:
        variables = json.dumps(list(axis.variables), ensure_ascii=False)
        out.writerow([axis.name, TOTAL_CODE, 0, variables, "[]"])
        for path, code in axis.codes.items():
            labels = json.dumps(list(path), ensure_ascii=False)
            out.writerow([axis.name, code, axis.level(path), variables, labels])
    return buf.getvalue()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DisclosureInputError(
            f"{name!r} cannot name tau-ARGUS files: use letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def _policy_of(record: OutputRecord, policy: Policy | None) -> Policy:
    recorded = Policy.model_validate(record.policy_parameters)
    if policy is None:
        return recorded
    if (policy.name, policy.version) != (record.policy, record.policy_version):
        raise DisclosureInputError(
            f"the record was checked under policy {record.policy!r} v{record.policy_version}, "
            f"not {policy.name!r} v{policy.version}: write the batch under the record's own "
            "policy so that tau-ARGUS gets the rules trenv applied"
        )
    return policy


def write_batch(
    record: OutputRecord,
    folder: Path,
    name: str,
    policy: Policy | None = None,
    *,
    method: Literal["MOD", "GH", "OPT"] = "MOD",
    minutes: int = 5,
    interactive: bool = False,
) -> dict[str, Path]:
    """Write the tau-ARGUS files for ``record`` into ``folder`` (created; it must not hold
    any of them already: nothing is overwritten). Returns file name -> path.

    ``policy`` defaults to the one recorded in the record (and must be it when given);
    ``method`` is tau-ARGUS's secondary suppression: MOD (modular, the default), GH
    (hypercube) or OPT (optimal), ``minutes`` its time limit per (sub)table.
    """
    check_name(name)
    if method not in SUPPRESS_METHODS:
        raise DisclosureInputError(f"method {method!r}: use one of {list(SUPPRESS_METHODS)}")
    if not 1 <= minutes <= 600:
        raise DisclosureInputError("minutes must be between 1 and 600")
    pol = _policy_of(record, policy)
    table = tau_table(record)
    rules = translate_rules(record, pol)
    hst, empty = hst_text(record, table, pol)
    header = (
        f"tau-ARGUS {TAU_ARGUS_VERSION} batch written by trenv {record.trenv_version}".rstrip()
        + f"\nTable: {record.statistic} by {record.index}"
        + (f" x {record.columns}" if record.columns else "")
        + f", policy {record.policy} v{record.policy_version}"
    )
    files: dict[str, str] = {
        f"{name}.tab": tab_text(record, table),
        f"{name}.rda": rda_text(name, table),
        f"{name}.hst": hst,
        f"{name}.arb": arb_text(
            name,
            table,
            rules,
            audit=False,
            method=method,
            minutes=minutes,
            interactive=interactive,
            header=header + "\nIndependent run: tau-ARGUS's own pattern",
        ),
        f"{name}-audit.arb": arb_text(
            name,
            table,
            rules,
            audit=True,
            method=method,
            minutes=minutes,
            interactive=interactive,
            header=header + "\nAudit run: trenv's pattern a priori",
        ),
        "codes.csv": codes_csv(table),
    }
    for axis in table.axes:
        if axis.hierarchical:
            files[hrc_name(name, axis)] = axis.hrc()
    files["README.txt"] = readme_text(record, name, table, rules, pol, method, empty)
    folder = Path(folder)
    existing = sorted(n for n in files if (folder / n).exists())
    if existing:
        raise DisclosureInputError(
            f"{folder} already holds {existing}; choose another name or folder "
            "(tau-ARGUS files are never overwritten)"
        )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    written: dict[str, Path] = {}
    for file_name, text in files.items():
        path = folder / file_name
        # "x": never overwrite, even in a race; owner-only: the values are unsuppressed.
        with open(path, "x", encoding="utf-8", newline="\n", opener=_private) as fh:
            fh.write(text)
        written[file_name] = path
    return written


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _item(line: str) -> str:
    return textwrap.fill(line, 88, initial_indent="  - ", subsequent_indent="    ")


def readme_text(
    record: OutputRecord,
    name: str,
    table: TauTable,
    rules: Rules,
    policy: Policy,
    method: str,
    empty_left_out: int,
) -> str:
    suppressed = [s for s in record.cells.suppressed if s is not None]
    axes = "\n".join(
        f"  {a.name}: trenv's {list(a.variables)}, {len(a.codes)} codes"
        + (f", hierarchical ({hrc_name(name, a)})" if a.hierarchical else "")
        for a in table.axes
    )
    translated = "\n".join(_item(line) for line in rules.translated)
    untranslated = "\n".join(_item(line) for line in rules.untranslated) or "  (none)"
    return f"""CONFIDENTIAL: tau-ARGUS input with UNSUPPRESSED values. Not a release candidate.
Keep these files inside the TRE (or on the checkers' host) and delete them after the check.

Table: {record.statistic} by {record.index}{f" x {record.columns}" if record.columns else ""}
Policy: {record.policy} v{record.policy_version}; checked {record.created.isoformat()}
trenv's pattern: {suppressed.count("primary")} primary and {suppressed.count("secondary")} \
secondary suppression(s)
Spanning variables (codes in codes.csv; labels are trenv's, codes are tau-ARGUS-safe):
{axes}
Response: {VALUE} ({table.decimals} decimals), frequency: {FREQ} (distinct contributors)\
{f", top {table.tops} contributions" if table.tops else ""}

How to run (tau-ARGUS {TAU_ARGUS_VERSION}, File | Open Batch Process, or
TauArgus.exe "<this folder>\\{name}.arb"):
  1. {name}.arb: tau-ARGUS's own primary and secondary suppression ({method}) under the
     rules below. Writes {output_name(name, False)}.
  2. {name}-audit.arb: the same with trenv's pattern loaded first ({name}.hst: each cell
     trenv suppressed made unsafe, with trenv's required width as protection levels;
     secondaries with protection 0). Whatever tau-ARGUS adds is what it finds missing.
     Writes {output_name(name, True)}.
  Then on the host: trenv airlock tau-argus-compare REQUEST FILE <written csv>
  (in a notebook: trenv.disclosure.tauargus_compare.compare_file(record, path)).

Rules translated:
{translated}

Rules tau-ARGUS cannot express (trenv applied them; tau-ARGUS will not):
{untranslated}

Other differences:
  - tau-ARGUS treats empty cells as known zeros and never suppresses them;
    {empty_left_out} empty cell(s) trenv suppressed are not in {name}.hst.
  - tau-ARGUS's modular method also protects singletons (a cell of one contributor
    can recompute another suppressed cell); trenv's audit protects against an outside
    intruder only.
  - Totals are written as the exact sums of the written cells at {table.decimals} decimals
    (tau-ARGUS checks additivity to 1e-14); rounding, if any, is not applied: tau-ARGUS
    sees the true values.
"""
