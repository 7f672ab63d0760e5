"""Tables with subtotals at every level of a hierarchy, protected as one table (issue 16).

Municipalities within provinces: the province subtotals are sums of their municipalities,
so a municipality hidden alone in its province comes back as the subtotal minus the rest,
even when the grand margins protect it. Every suppressed cell must keep its protection
against all levels at once; the intruder's LP in these tests is written here, from the
published table only, not with trenv's audit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

import trenv.lab as tre
from trenv.airlock.formats import check_file
from trenv.airlock.intake import read_sidecar, read_workspace_file, sidecar_paths
from trenv.disclosure import DisclosureInputError, check_table, recheck
from trenv.disclosure.differencing import Ledger
from trenv.disclosure.structure import aggregate, relations, tree_axis

PROVINCES = {"Drenthe": ["Assen", "Emmen", "Meppel"], "Utrecht": ["Houten", "Utrecht", "Zeist"]}


@pytest.fixture(scope="module")
def offences() -> pd.DataFrame:
    """About 1,900 people by municipality and offence; Meppel has 4 people with fraud."""
    rng = np.random.default_rng(16)
    rows = []
    pid = 0
    for province, towns in PROVINCES.items():
        for town in towns:
            for offence, n in (("theft", 180), ("fraud", 90), ("assault", 45)):
                n = 4 if (town, offence) == ("Meppel", "fraud") else n + int(rng.integers(0, 30))
                for _ in range(n):
                    rows.append((province, town, offence, pid, float(rng.gamma(2.0, 6.0))))
                    pid += 1
    return pd.DataFrame(rows, columns=["province", "municipality", "offence", "person", "months"])


def hierarchical(frame: pd.DataFrame, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("columns", ["offence"])
    return check_table(
        frame, index=["province", "municipality"], contributor="person", margins=True,
        subtotals=True, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_tree_axis_puts_each_subtotal_after_its_children() -> None:
    axis = tree_axis([("a", "x"), ("a", "y"), ("b", "z")], "All")
    assert axis.labels == [
        ("a", "x"), ("a", "y"), ("a", "All"), ("b", "z"), ("b", "All"), ("All", ""),
    ]  # fmt: skip
    assert axis.level.tolist() == [2, 2, 1, 2, 1, 0]
    assert axis.parent.tolist() == [2, 2, 5, 4, 5, -1]
    with pytest.raises(ValueError, match="not together"):
        tree_axis([("a", "x"), ("b", "z"), ("a", "y")], "All")


def test_the_table_is_pandas_with_a_subtotal_per_province(offences: pd.DataFrame) -> None:
    check = hierarchical(offences)
    table = check.table
    leaves = pd.crosstab([offences.province, offences.municipality], offences.offence)
    for (province, town), row in leaves.iterrows():
        assert table.loc[(province, town), leaves.columns].tolist() == row.tolist()
    by_province = pd.crosstab(offences.province, offences.offence, margins=True)
    for province in PROVINCES:
        assert table.loc[(province, "All")].tolist() == by_province.loc[province].tolist()
    assert table.loc[("All", "")].tolist() == by_province.loc["All"].tolist()
    # Rows in order: each province's municipalities, then its subtotal; the total last.
    assert list(table.index)[:4] == [
        ("Drenthe", "Assen"), ("Drenthe", "Emmen"), ("Drenthe", "Meppel"), ("Drenthe", "All"),
    ]  # fmt: skip
    cells = check.record.cells
    levels = dict(zip(map(tuple, cells.row), cells.row_level or [], strict=True))
    assert levels[("Drenthe", "Meppel")] == 2 and levels[("Drenthe", "All")] == 1
    assert levels[("All", "")] == 0 and check.record.subtotals


def intruder_interval(check, cell: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """min/max of a hidden cell over every table consistent with what is published: the
    cells shown, non-negativity, and every subtotal and total as the sum of its parts
    (read off the published table's own labels, not from trenv)."""
    safe = check.safe.to_numpy(dtype=float, na_value=np.nan)
    n_r, n_c = safe.shape
    hidden = np.flatnonzero(np.isnan(safe.ravel()))
    var = {int(h): k for k, h in enumerate(hidden)}
    rows = list(check.safe.index)
    # A row's parts: the municipalities of a province, the provinces for the total.
    parts: dict[int, list[int]] = {}
    for i, (province, town) in enumerate(rows):
        if town not in ("All", ""):
            parts.setdefault(rows.index((province, "All")), []).append(i)
        elif town == "All":
            parts.setdefault(rows.index(("All", "")), []).append(i)
    facts: list[tuple[list[int], int]] = [(p, t) for t, p in parts.items()]
    a_eq, b_eq = [], []

    def add(members: list[int], total: int) -> None:
        coef = np.zeros(len(hidden))
        rhs = 0.0
        for pos, sign in [(m, 1.0) for m in members] + [(total, -1.0)]:
            if pos in var:
                coef[var[pos]] += sign
            else:
                rhs -= sign * safe.flat[pos]
        if coef.any():
            a_eq.append(coef)
            b_eq.append(rhs)

    for members, total in facts:  # down the hierarchy, in every column
        for j in range(n_c):
            add([m * n_c + j for m in members], total * n_c + j)
    for i in range(n_r):  # along every row: the offences add up to the row's total
        add([i * n_c + j for j in range(n_c - 1)], i * n_c + n_c - 1)
    target = np.zeros(len(hidden))
    target[var[cell]] = 1.0
    lo = linprog(target, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=(0, None))
    hi = linprog(-target, A_eq=np.array(a_eq), b_eq=np.array(b_eq), bounds=(0, None))
    assert lo.status == 0 and hi.status == 0
    return lo.fun, -hi.fun


def test_every_hidden_cell_keeps_its_interval_against_every_level(offences: pd.DataFrame) -> None:
    check = hierarchical(offences)
    safe = check.safe
    assert pd.isna(safe.loc[("Drenthe", "Meppel"), "fraud"])  # 4 people: primary
    assert check.audit is not None and check.audit.ok
    hidden = np.flatnonzero(np.isnan(safe.to_numpy(dtype=float, na_value=np.nan).ravel()))
    assert len(hidden) >= 4  # a partner in its row and in its province, and so on
    for cell in hidden:
        lo, hi = intruder_interval(check, int(cell))
        assert hi - lo >= 5 - 1e-9, (divmod(int(cell), safe.shape[1]), lo, hi)
    assert recheck(check.record, "trenv-default").ok


def test_protecting_the_flat_table_alone_leaks_through_the_subtotals() -> None:
    # Towns a1, a2 in province A and b1, b2 in B; a1 has 4 people with offence x. The flat
    # town x offence table hides a1/x with the cheapest partners, b1/x and then a1/y, b1/y:
    # a rectangle, safe in the flat table. Add the province subtotals (all large) and
    # a1/x = A/x - a2/x = 4. Protected as one hierarchy, every hidden cell keeps its room.
    spec = {("A", "a1", "x"): 4, ("A", "a1", "y"): 100, ("A", "a2", "x"): 200,
            ("A", "a2", "y"): 200, ("B", "b1", "x"): 50, ("B", "b1", "y"): 100,
            ("B", "b2", "x"): 200, ("B", "b2", "y"): 200}  # fmt: skip
    frame = pd.DataFrame(
        [key for key, n in spec.items() for _ in range(n)],
        columns=["province", "municipality", "offence"],
    ).assign(person=lambda f: range(len(f)))
    flat = check_table(
        frame, index=["municipality"], columns=["offence"], contributor="person", margins=True
    )
    assert set(zip(*np.nonzero(flat.safe.isna().to_numpy()), strict=True)) == {
        (0, 0), (0, 1), (2, 0), (2, 1),
    }  # fmt: skip
    hier = hierarchical(frame)
    combined = hier.table.astype("Float64").copy()
    for province, town in combined.index:
        if town not in ("All", ""):
            combined.loc[(province, town)] = flat.safe.loc[town].to_numpy()

    class Published:  # the flat pattern, with the province subtotals shown
        safe = combined

    lo, hi = intruder_interval(Published, _position(combined, ("A", "a1"), "x"))
    assert (lo, hi) == pytest.approx((4.0, 4.0))
    for cell in np.flatnonzero(hier.safe.isna().to_numpy().ravel()):
        lo, hi = intruder_interval(hier, int(cell))
        assert hi - lo >= 5 - 1e-9


def _position(frame: pd.DataFrame, row: tuple[str, str], column: str) -> int:
    return list(frame.index).index(row) * frame.shape[1] + list(frame.columns).index(column)


def test_the_differencing_ledger_knows_the_nesting_from_a_table_with_subtotals() -> None:
    # P1: a (3 people), b (30); P2: c (3), d (30). With subtotals, a and c are hidden and
    # b and d are their partners. Then a flat table by municipality shows b and d. Only
    # someone who knows that a and b are in P1 (and c, d in P2) gets a = P1 - b = 3: the
    # subtotal table says so, since it lists every municipality under its province.
    spec = {("P1", "a"): 3, ("P1", "b"): 30, ("P2", "c"): 3, ("P2", "d"): 30}
    frame = pd.DataFrame(
        [(p, m) for (p, m), n in spec.items() for _ in range(n)], columns=["province", "town"]
    ).assign(person=lambda f: range(len(f)))
    nested = check_table(
        frame, index=["province", "town"], contributor="person", margins=True, subtotals=True
    )
    hidden = nested.safe.iloc[:, 0].isna()
    assert hidden[("P1", "a")] and hidden[("P1", "b")] and not hidden[("P1", "All")]
    flat = check_table(frame, index=["town"], contributor="person")
    assert pd.isna(flat.safe.loc["a"].iloc[0]) and flat.safe.loc["b"].iloc[0] == 30
    found = {(tuple(f.row), tuple(f.column)) for f in Ledger([nested.record]).check(flat.record)}
    assert (("P1", "a"), ("count",)) in found and (("P2", "c"), ("count",)) in found


def test_sums_means_and_medians_with_subtotals(offences: pd.DataFrame) -> None:
    for statistic in ("sum", "mean", "median"):
        check = hierarchical(offences, values="months", statistic=statistic, columns=[])
        grouped = offences.groupby(["province", "municipality"]).months.agg(statistic)
        for (province, town), value in grouped.items():
            shown = check.table.loc[(province, town)].iloc[0]
            assert shown == pytest.approx(value)
        assert check.table.loc[("Utrecht", "All")].iloc[0] == pytest.approx(
            offences[offences.province == "Utrecht"].months.agg(statistic)
        )
        assert recheck(check.record, "trenv-default").ok, statistic


def test_people_in_two_municipalities_count_once_in_their_province() -> None:
    frame = pd.DataFrame(
        {
            "province": ["P"] * 24,
            "municipality": ["a"] * 12 + ["b"] * 12,
            "person": list(range(12)) * 2,  # the same 12 people in both
        }
    )
    check = check_table(
        frame, index=["province", "municipality"], contributor="person", margins=True,
        subtotals=True,
    )  # fmt: skip
    cells = check.record.cells
    people = dict(zip(map(tuple, cells.row), cells.contributors, strict=True))
    assert people[("P", "a")] == people[("P", "b")] == people[("P", "All")] == 12


def test_rounded_subtotals_are_sums_of_rounded_leaves(offences: pd.DataFrame) -> None:
    check = hierarchical(offences, policy="opensafely")
    safe = check.safe.fillna(0).to_numpy()
    rows, cols = (
        tree_axis([tuple(x) for x in check.table.index if x[1] not in ("All", "")], "All"),
        tree_axis([(c,) for c in check.table.columns[:-1]], "All"),
    )
    leaves = check.table.to_numpy()[np.ix_(rows.leaves, cols.leaves)]
    rounded = aggregate(np.floor(leaves / 5 + 0.5) * 5, rows, cols)
    published = ~np.isnan(check.safe.to_numpy(dtype=float, na_value=np.nan))
    np.testing.assert_array_equal(safe[published], rounded[published])
    assert recheck(check.record, "opensafely").ok


def test_subtotals_need_margins(offences: pd.DataFrame) -> None:
    with pytest.raises(DisclosureInputError, match="margins=True"):
        check_table(
            offences, index=["province", "municipality"], contributor="person", subtotals=True
        )


def test_relations_of_a_flat_axis_are_the_classic_margins() -> None:
    rows = tree_axis([("a",), ("b",)], "All")
    cols = tree_axis([("x",), ("y",), ("z",)], "All")
    facts = relations(rows, cols)
    assert len(facts) == 4 + 3  # every column's rows, every row's columns
    assert {(tuple(f.parts.tolist()), f.total) for f in facts} >= {((0, 4), 8), ((0, 1, 2), 3)}


def tamper(record: dict, row: list[str], column: list[str], **changes: object) -> dict:
    cells = record["cells"]
    i = next(
        k
        for k in range(len(cells["row"]))
        if cells["row"][k] == row and cells["column"][k] == column
    )
    for key, value in changes.items():
        cells[key][i] = value
    return record


def test_the_server_refuses_tampered_hierarchical_records(offences: pd.DataFrame) -> None:
    from trenv.disclosure.record import OutputRecord

    good = hierarchical(offences).record
    assert recheck(good, "trenv-default").ok
    data = good.model_dump(mode="json")
    # A subtotal whose people no longer add up.
    bad = tamper(json.loads(json.dumps(data)), ["Drenthe", "All"], ["theft"], rows=1)
    problems = recheck(OutputRecord.model_validate(bad), "trenv-default").problems
    assert any("Drenthe" in p and "inconsistent" in p for p in problems)
    # Meppel's fraud published again (marked unsuppressed).
    bad = tamper(
        json.loads(json.dumps(data)), ["Drenthe", "Meppel"], ["fraud"],
        published=4.0, suppressed=None,
    )  # fmt: skip
    problems = recheck(OutputRecord.model_validate(bad), "trenv-default").problems
    assert any("threshold" in p for p in problems)
    # A partner cell published: the LP over the hierarchy narrows its neighbour.
    cells = data["cells"]
    partner = next(i for i, s in enumerate(cells["suppressed"]) if s == "secondary")
    bad = json.loads(json.dumps(data))
    bad["cells"]["published"][partner] = bad["cells"]["value"][partner]
    bad["cells"]["suppressed"][partner] = None
    problems = recheck(OutputRecord.model_validate(bad), "trenv-default").problems
    assert any("can be narrowed" in p for p in problems)
    # A subtotal row left out of the record: not a complete hierarchy.
    bad = json.loads(json.dumps(data))
    keep = [i for i, r in enumerate(bad["cells"]["row"]) if r != ["Utrecht", "All"]]
    for key, value in bad["cells"].items():
        if isinstance(value, list):
            bad["cells"][key] = [value[i] for i in keep]
    problems = recheck(OutputRecord.model_validate(bad), "trenv-default").problems
    assert any("complete tree" in p for p in problems)


def test_a_saved_hierarchical_table_passes_the_airlock(
    offences: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRENV_WORKSPACE", str(tmp_path))
    out = tre.pivot_table(
        offences, index=["province", "municipality"], columns="offence", aggfunc="count",
        margins=True, contributor="person", subtotals=True,
    )  # fmt: skip
    crosstab = tre.crosstab(
        [offences.province, offences.municipality], offences.offence,
        contributor=offences.person, margins=True, subtotals=True,
    )  # fmt: skip
    assert crosstab.result.equals(out.result)
    tre.save(out, "by_town")
    rel = "outputs/by_town.csv"
    frozen = read_workspace_file(tmp_path, rel)
    record = read_sidecar(tmp_path, sidecar_paths(rel)["record"])
    check = check_file(frozen, project="p1", policy="trenv-default", record=record)
    statuses = {f.rule_id: f.status for f in check.findings}
    assert statuses["record-match"] == "pass" and statuses["recheck"] == "pass", check.findings


def test_controlled_rounding_keeps_every_level_additive(offences: pd.DataFrame) -> None:
    # trenv-rounding: controlled rounding to base 10 in place of suppression. Every cell of
    # every level is a multiple of 10 next to its true count, and every subtotal is the sum
    # of its rounded parts (the province's municipalities and the offences alike).
    check = hierarchical(offences, policy="trenv-rounding")
    assert check.record.rounding == "controlled"
    shown = check.safe.to_numpy(dtype=float, na_value=np.nan)
    true = check.table.to_numpy(dtype=float)
    ok = ~np.isnan(shown)
    assert np.all(shown[ok] % 10 == 0) and np.all(np.abs(shown[ok] - true[ok]) < 10)
    rows = tree_axis([x for x in check.table.index if x[1] not in ("All", "")], "All")
    cols = tree_axis([(c,) for c in check.table.columns[:-1]], "All")
    rounded = np.array(check.record.cells.rounded, dtype=float).reshape(true.shape)
    for rel in relations(rows, cols):
        assert rounded.ravel()[rel.parts].sum() == rounded.ravel()[rel.total]
    # Meppel's 4 fraud cases are published as 0 or 10, not suppressed.
    assert shown[list(check.table.index).index(("Drenthe", "Meppel")), 1] in (0, 10)
    assert recheck(check.record, "trenv-rounding").ok
