"""Benchmark: controlled rounding (an integer programme, SciPy's HiGHS) against rounding to
base with consistent totals (a vectorised formula) on count tables with margins.

    .venv/bin/python benchmarks/rounding.py              # the sizes below
    .venv/bin/python benchmarks/rounding.py --repeat 3   # fastest of 3 runs each

Tables of Poisson counts (mean 4, so about half the cells are below 5) with margins, base 10;
the 120 x 160 table has the shape of the count table of ``benchmarks/disclosure.py``.
Each controlled rounding is verified (adjacent multiples, additive) before it is timed in.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from trenv.disclosure.controlled import controlled_round, problems
from trenv.disclosure.rounding import round_table
from trenv.disclosure.suppression import table_relations

SHAPES = [(10, 10), (50, 50), (120, 160), (300, 300)]
BASE = 10


def _table(r: int, c: int, rng: np.random.Generator) -> np.ndarray:
    inner = rng.poisson(4, (r, c)).astype(float)
    grid = np.zeros((r + 1, c + 1))
    grid[:r, :c] = inner
    grid[:r, c] = inner.sum(axis=1)
    grid[r, :c] = inner.sum(axis=0)
    grid[r, c] = inner.sum()
    return grid


def _best(fn: Callable[..., object], repeat: int, *args: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(20261201)
    head = ("cells", "base (s)", "controlled (s)", "ratio", "distance/cell")
    print(f"{head[0]:>10} {head[1]:>10} {head[2]:>15} {head[3]:>8} {head[4]:>14}")
    for r, c in SHAPES:
        grid = _table(r, c, rng)
        relations = table_relations(r, c)
        found = controlled_round(grid.ravel(), relations, BASE)
        assert found.rounded is not None and found.optimal
        assert problems(found.rounded, grid.ravel(), relations, BASE) == []
        t_base = _best(round_table, args.repeat, grid, "base", BASE)
        t_ctrl = _best(controlled_round, args.repeat, grid.ravel(), relations, BASE)
        print(
            f"{grid.size:>10,} {t_base:>10.4f} {t_ctrl:>15.3f} {t_ctrl / t_base:>7.0f}x "
            f"{found.distance / grid.size:>14.2f}"
        )


if __name__ == "__main__":
    main()
