"""The cycle certificates equal a scalar enumeration of every rectangle of hidden cells."""

from __future__ import annotations

import numpy as np
import pytest

from trenv.disclosure.suppression import CANDIDATES, cycle_certificates


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
