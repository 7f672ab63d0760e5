"""The structural certificates: single rectangles equal a scalar enumeration of every
rectangle of hidden cells; many rectangles and maximum flows never claim more room than the
intruder's LP allows, and the flows claim exactly that much on counts."""

from __future__ import annotations

import numpy as np
import pytest

from trenv.disclosure.certificates import (
    CANDIDATES,
    cycle_certificates,
    flow_moves,
    many_cycle_certificates,
)


def _reference(values: np.ndarray, hidden: np.ndarray, nonneg: bool) -> tuple[np.ndarray, ...]:
    """For each hidden (r, c): over all rectangles (r, c), (r, c2), (r2, c), (r2, c2) of
    hidden cells, the largest feasible move down and up, one scalar at a time."""
    n_r, n_c = values.shape
    sign_r = [1.0] * (n_r - 1) + [-1.0]
    sign_c = [1.0] * (n_c - 1) + [-1.0]
    down = np.zeros(values.shape)
    up = np.zeros(values.shape)
    for r in range(n_r):
        for c in range(n_c):
            if not hidden[r, c]:
                continue
            for r2 in range(n_r):
                for c2 in range(n_c):
                    if r2 == r or c2 == c:
                        continue
                    if not (hidden[r, c2] and hidden[r2, c] and hidden[r2, c2]):
                        continue
                    if not nonneg:
                        down[r, c] = up[r, c] = np.inf
                        continue
                    # Move +t on (r, c) in the sign-adjusted table z = s_r s_c x.
                    s = sign_r[r] * sign_c[c]
                    moves = {
                        (r, c2): -sign_r[r] * sign_c[c2] * s,
                        (r2, c): -sign_r[r2] * sign_c[c] * s,
                        (r2, c2): sign_r[r2] * sign_c[c2] * s,
                    }
                    lo = values[r, c]  # the target itself moves with +1
                    hi = np.inf
                    for cell, a in moves.items():
                        if a > 0:
                            lo = min(lo, values[cell])
                        else:
                            hi = min(hi, values[cell])
                    down[r, c] = max(down[r, c], lo)
                    up[r, c] = max(up[r, c], hi)
    return down, up


def _table(rng: np.random.Generator, n_r: int, n_c: int) -> np.ndarray:
    inner = rng.integers(0, 30, size=(n_r, n_c)).astype(float)
    full = np.zeros((n_r + 1, n_c + 1))
    full[:n_r, :n_c] = inner
    full[:n_r, n_c] = inner.sum(axis=1)
    full[n_r, :n_c] = inner.sum(axis=0)
    full[n_r, n_c] = inner.sum()
    return full


@pytest.mark.parametrize("seed", range(30))
def test_certificates_match_rectangle_enumeration(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Below CANDIDATES hidden cells per line every partner is tried: exact enumeration.
    n_r, n_c = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    values = _table(rng, n_r, n_c)
    hidden = rng.random(values.shape) < rng.uniform(0.1, 0.9)
    assert n_r + 1 <= CANDIDATES and n_c + 1 <= CANDIDATES
    for nonneg in (True, False):
        got = cycle_certificates(values, hidden, nonneg=nonneg)
        want = _reference(values, hidden, nonneg)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def _truth(values: np.ndarray, hidden: np.ndarray) -> dict[int, tuple[float, float]]:
    from tests.disclosure.test_suppression import _independent_intervals

    return _independent_intervals(values, hidden)


@pytest.mark.parametrize("seed", range(12))
def test_many_cycles_and_flows_against_the_intruders_lp(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    n_r, n_c = int(rng.integers(2, 8)), int(rng.integers(2, 8))
    values = _table(rng, n_r, n_c)
    hidden = rng.random(values.shape) < rng.uniform(0.3, 0.95)
    cells = np.flatnonzero(hidden)
    if not len(cells):
        return
    truth = _truth(values, hidden)
    d_many, u_many = many_cycle_certificates(values, hidden, cells)
    big = np.full(len(cells), 1e6)
    d_flow, u_flow, exact = flow_moves(values, hidden, True, cells, big, big)
    assert exact  # counts: the flows are the true room
    for k, cell in enumerate(cells.tolist()):
        v = values.flat[cell]
        lo, hi = truth[cell]
        # Certificates are feasible tables: never more room than the intruder's LP allows.
        assert v - d_many[k] >= lo - 1e-9 and v + u_many[k] <= hi + 1e-9
        # The maximum flow is the LP's answer (capped at what was asked).
        assert d_flow[k] == pytest.approx(v - lo, abs=1e-9)
        assert u_flow[k] == pytest.approx(min(hi - v, 1e6), abs=1e-9)


def test_many_cycles_prove_room_no_single_rectangle_has() -> None:
    # A table of ones, all hidden: every rectangle moves a cell by at most 1, but five
    # rectangles with distinct rows and columns move it by 5.
    inner = np.ones((6, 6))
    values = np.zeros((7, 7))
    values[:6, :6] = inner
    values[:6, 6] = 6
    values[6, :6] = 6
    values[6, 6] = 36
    hidden = np.zeros((7, 7), dtype=bool)
    hidden[:6, :6] = True
    down, up = cycle_certificates(values, hidden, nonneg=True)
    assert up[0, 0] == 1 and down[0, 0] == 1
    d, u = many_cycle_certificates(values, hidden, np.array([0]))
    assert u[0] == 5 and d[0] == 1


def test_flows_on_sums_are_inner_bounds() -> None:
    rng = np.random.default_rng(7)
    values = _table(rng, 4, 5) + 0.37  # not integers: the capacities are scaled down
    inner = values[:4, :5]
    values[:4, 5] = inner.sum(axis=1)
    values[4, :5] = inner.sum(axis=0)
    values[4, 5] = inner.sum()
    hidden = np.zeros(values.shape, dtype=bool)
    hidden[:4, :5] = True
    cells = np.flatnonzero(hidden)
    want = np.full(len(cells), 500.0)  # more than any cell can move
    d, u, exact = flow_moves(values, hidden, True, cells, want, want)
    assert not exact
    truth = _truth(values, hidden)
    for k, cell in enumerate(cells.tolist()):
        v = values.flat[cell]
        lo, hi = truth[cell]
        assert v - d[k] >= lo - 1e-9 and v + u[k] <= hi + 1e-9
        # And close: the scaling (here by 2^20) loses almost nothing.
        assert u[k] >= (hi - v) - 1e-4 and d[k] >= (v - lo) - 1e-4
