"""Secondary suppression, verified by an independent linear-programming audit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linprog

from tests.disclosure.helpers import cells
from trenv.disclosure import check_table
from trenv.disclosure.suppression import audit, secondary_suppression, table_relations


def _with_margins(inner: np.ndarray) -> np.ndarray:
    r, c = inner.shape
    full = np.zeros((r + 1, c + 1))
    full[:r, :c] = inner
    full[:r, c] = inner.sum(axis=1)
    full[r, :c] = inner.sum(axis=0)
    full[r, c] = inner.sum()
    return full


def _independent_intervals(full: np.ndarray, hidden: np.ndarray) -> dict[int, tuple[float, float]]:
    """Dense LP over *all* cells of the table: published cells fixed, every row and column
    adds up to its margin, counts non-negative. Written separately from trenv's audit."""
    r, c = full.shape[0] - 1, full.shape[1] - 1
    n = full.size
    eqs, rhs = [], []
    for i in range(r + 1):
        row = np.zeros(n)
        row[i * (c + 1) : i * (c + 1) + c] = 1
        row[i * (c + 1) + c] = -1
        eqs.append(row)
        rhs.append(0.0)
    for j in range(c + 1):
        col = np.zeros(n)
        col[[k * (c + 1) + j for k in range(r)]] = 1
        col[r * (c + 1) + j] = -1
        eqs.append(col)
        rhs.append(0.0)
    bounds = [(0, None) if hidden.flat[k] else (full.flat[k], full.flat[k]) for k in range(n)]
    out = {}
    for k in np.flatnonzero(hidden.ravel()):
        obj = np.zeros(n)
        obj[k] = 1
        lo = linprog(obj, A_eq=np.array(eqs), b_eq=rhs, bounds=bounds, method="highs")
        hi = linprog(-obj, A_eq=np.array(eqs), b_eq=rhs, bounds=bounds, method="highs")
        out[int(k)] = (lo.fun, -hi.fun if hi.status == 0 else np.inf)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_random_tables_pass_the_independent_audit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r, c = rng.integers(2, 7), rng.integers(2, 7)
    inner = rng.negative_binomial(2, 0.08, size=(r, c)).astype(float)
    full = _with_margins(inner)
    primary = np.zeros(full.shape, dtype=bool)
    primary[:r, :c] = inner < 12
    required = np.maximum(5.0, 0.25 * full.ravel())
    supp, result = secondary_suppression(
        full.ravel(),
        primary.ravel(),
        table_relations(r, c),
        np.zeros(full.size),
        np.full(full.size, np.inf),
        required,
        max_rounds=50,
        shape=full.shape,
    )
    assert supp[primary.ravel()].all(), "primary cells stay suppressed"
    assert result.ok
    truth = _independent_intervals(full, supp.reshape(full.shape))
    for k, (lo, hi) in truth.items():
        assert hi - lo >= required[k] - 1e-6, (seed, k, lo, hi, required[k])
    # trenv's own intervals agree with the independent LP where it solved them, and are
    # never wider than the truth where a cycle certificate was used.
    for cell, lo, hi, how in zip(
        result.cells, result.lower, result.upper, result.method, strict=True
    ):
        t_lo, t_hi = truth[int(cell)]
        if how == "lp":
            # The maximum is exact; the minimum is exact or (when not needed) the value.
            assert hi == pytest.approx(t_hi, abs=1e-6)
            assert lo == pytest.approx(t_lo, abs=1e-6) or lo == full.flat[int(cell)]
        assert lo >= t_lo - 1e-6 and hi <= t_hi + 1e-6


def test_audit_exposes_a_single_hidden_cell() -> None:
    full = _with_margins(np.array([[20.0, 3.0], [15.0, 30.0]]))
    hidden = np.zeros(full.shape, dtype=bool)
    hidden[0, 1] = True
    res = audit(
        full.ravel(),
        hidden.ravel(),
        table_relations(2, 2),
        np.zeros(9),
        np.full(9, np.inf),
        np.full(9, 5.0),
        shape=full.shape,
    )
    assert res.lower[0] == res.upper[0] == 3.0
    assert not res.ok


def test_margins_do_not_leak_suppressed_cells() -> None:
    # Regression: with margins published, hiding only the small cell lets anyone recover
    # it as margin minus the rest. trenv must hide partners so that it cannot.
    df = cells(
        {
            ("x", "p"): [1] * 3,
            ("x", "q"): [1] * 40,
            ("x", "r"): [1] * 25,
            ("y", "p"): [1] * 30,
            ("y", "q"): [1] * 22,
            ("y", "r"): [1] * 50,
            ("z", "p"): [1] * 18,
            ("z", "q"): [1] * 35,
            ("z", "r"): [1] * 27,
        }
    )
    check = check_table(df, index=["a"], columns=["b"], contributor="pid", margins=True)
    safe = check.safe
    assert pd.isna(safe.loc["x", "p"])
    for label in ("x",):
        row = safe.loc[label, ["p", "q", "r"]]
        assert row.isna().sum() >= 2, "a row with one hidden cell is solvable from its total"
    col = safe.loc[["x", "y", "z"], "p"]
    assert col.isna().sum() >= 2
    assert check.record.audit_passed is True
    published = safe.to_numpy(dtype=float, na_value=np.nan)
    truth = _independent_intervals(check.table.to_numpy().astype(float), np.isnan(published))
    for lo, hi in truth.values():
        assert hi - lo >= 5 - 1e-9


def test_sum_tables_with_negatives_are_audited_without_lower_bounds() -> None:
    df = cells(
        {
            ("x", "p"): [5.0] * 3,
            ("x", "q"): [float(v) for v in range(-5, 20)],
            ("y", "p"): [float(v) for v in range(30)],
            ("y", "q"): [float(v) for v in range(40)],
        }
    )
    check = check_table(
        df, index=["a"], columns=["b"], values="v", statistic="sum", contributor="pid", margins=True
    )
    assert check.record.audit_passed is True
    assert check.suppressed.loc["x", "p"]
    assert check.suppressed.to_numpy().sum() >= 4  # a whole rectangle


def test_one_way_table_total_does_not_leak() -> None:
    df = pd.DataFrame({"a": ["x"] * 3 + ["y"] * 20 + ["z"] * 30, "pid": range(53)})
    with_total = check_table(df, index=["a"], contributor="pid", margins=True)
    hidden = with_total.safe.iloc[:, 0].isna().tolist()
    assert hidden[0] and sum(hidden[:3]) == 2, "the total minus the others gives x back"
    assert with_total.record.audit_passed is True
    without = check_table(df, index=["a"], contributor="pid")
    assert without.safe.iloc[:, 0].isna().tolist() == [True, False, False]


def test_audit_tolerates_rounding_noise_in_float_margins() -> None:
    # Margins of sums are added per person, the cells per cell: in floating point they
    # miss each other by a few ulps (1e-6 on a 2e7 total at 3M rows). The LP must not
    # read that as contradictory facts ("infeasible") and crash the check.
    inner = np.array([[1e7 + 0.1, 2e7 + 0.2, 5.0], [3e7 + 0.3, 4e7 + 0.4, 7.0]])
    grid = np.zeros((3, 4))
    grid[:2, :3] = inner
    grid[:2, 3] = inner.sum(axis=1)
    grid[2, :3] = inner.sum(axis=0)
    grid[2, 3] = inner.sum()
    grid[0, 3] += 2e-6
    grid[2, 0] -= 2e-6
    hidden = np.zeros((3, 4), dtype=bool)
    hidden[:2, :2] = True
    result = audit(
        grid.ravel(),
        hidden.ravel(),
        table_relations(2, 3),
        np.zeros(12),
        np.full(12, np.inf),
        np.full(12, 1e9),  # more than any cycle gives: every cell goes to the LP
        shape=(3, 4),
    )
    assert result.method.tolist() == ["lp"] * 4
    np.testing.assert_allclose(result.upper, [3e7 + 0.3, 3e7 + 0.3, 4e7 + 0.4, 6e7 + 0.6])


@pytest.mark.parametrize("seed", range(12))
def test_point_certificates_give_the_exact_verdicts(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batch programmes settle cells with feasible points (inner bounds of the intervals);
    # the suppression they lead to must be the one the per-cell exact programmes give.
    import trenv.disclosure.suppression as suppression

    rng = np.random.default_rng(100 + seed)
    r, c = rng.integers(3, 9), rng.integers(3, 9)
    full = _with_margins(rng.pareto(1.2, size=(r, c)) * 50 + rng.random((r, c)))
    primary = np.zeros(full.shape, dtype=bool)
    primary[:r, :c] = rng.random((r, c)) < 0.2
    args = (
        full.ravel(),
        primary.ravel(),
        table_relations(r, c),
        np.zeros(full.size),
        np.full(full.size, np.inf),
        0.25 * np.abs(full.ravel()),
        50,
    )
    supp, result = secondary_suppression(*args, shape=full.shape)
    monkeypatch.setattr(suppression, "POINT_ROUNDS", 0)
    exact_supp, exact = secondary_suppression(*args, shape=full.shape)
    np.testing.assert_array_equal(supp, exact_supp)
    assert result.ok == exact.ok
    # Every interval is inside the true one (a certificate, never an overstatement).
    truth = _independent_intervals(full, supp.reshape(full.shape))
    for cell, lo, hi in zip(result.cells, result.lower, result.upper, strict=True):
        t_lo, t_hi = truth[int(cell)]
        assert lo >= t_lo - 1e-6 and hi <= t_hi + 1e-6


def test_protection_levels_are_two_sided() -> None:
    # (0, 0) = 100 moves down by up to 80 but up by only 3 (its row partner holds 3): wide
    # enough (83), far enough below, not far enough above.
    full = _with_margins(np.array([[100.0, 3.0], [50.0, 80.0]]))
    hidden = np.zeros(full.shape, dtype=bool)
    hidden[:2, :2] = True
    n = full.size
    level = np.zeros(n)
    level[0] = 10.0
    args = (full.ravel(), hidden.ravel(), table_relations(2, 2), np.zeros(n), np.full(n, np.inf))
    common = {"shape": full.shape}
    width = np.full(n, 5.0)
    below_only = audit(*args, width, lower_level=level, **common)
    assert below_only.passed[0]
    both = audit(*args, width, lower_level=level, upper_level=level, **common)
    assert not both.passed[0] and both.upper[0] == pytest.approx(103.0)
    # The lower level is capped at what the a priori bound allows (a sum cannot go below 0).
    deep = np.zeros(n)
    deep[0] = 500.0
    capped = audit(*args, width, lower_level=deep, **common)
    assert capped.below[0] == 100.0 and not capped.passed[0]  # the far corner holds 80


@pytest.mark.parametrize("shape", [True, False])
def test_an_already_protected_pattern_is_returned_as_it_is(shape: bool) -> None:
    # Four primary cells forming a rectangle that moves each by 20 or more: nothing to add,
    # nothing for the clean-up to take away (primaries stay), whatever the cost.
    full = _with_margins(np.array([[30.0, 40.0, 9.0], [25.0, 35.0, 8.0], [7.0, 6.0, 50.0]]))
    primary = np.zeros(full.shape, dtype=bool)
    primary[:2, :2] = True
    n = full.size
    for cost in (None, np.ones(n)):
        supp, result = secondary_suppression(
            full.ravel(),
            primary.ravel(),
            table_relations(3, 3),
            np.zeros(n),
            np.full(n, np.inf),
            np.full(n, 5.0),
            50,
            shape=full.shape if shape else None,
            cost=cost,
        )
        np.testing.assert_array_equal(supp, primary.ravel())
        assert result.ok


def test_a_small_row_is_partnered_by_a_row_not_by_the_totals() -> None:
    # A court of 6 people: its whole row is primary. Rectangles alone reached for the
    # column totals and the grand total (3,000 people hidden); partners along the
    # relations hide one other court's row. The cheaper pattern is kept, totals shown.
    import pandas as pd

    from trenv.disclosure import check_table

    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame(
        {
            "court": rng.choice(["Amsterdam", "Den Haag", "Zwolle"], n, p=[0.5, 0.3, 0.2]),
            "verdict": rng.choice(["guilty", "acquitted", "dismissed"], n, p=[0.7, 0.2, 0.1]),
            "person": rng.integers(0, 2000, n),
        }
    )
    df.loc[:5, "court"] = "Assen"
    check = check_table(df, index=["court"], columns=["verdict"], contributor="person",
                        margins=True)  # fmt: skip
    assert check.audit is not None and check.audit.ok
    hidden = check.safe.isna()
    assert hidden.loc["Assen"].all()
    assert not hidden.loc["All"].any()  # every total is published
    assert int(hidden.to_numpy().sum()) == 8  # Assen's row and one partner row
