"""Benchmark: DP releases (trenv.privacy.releases) vs the plain polars aggregation.

    .venv/bin/python benchmarks/dp.py                       # 1M and 10M rows
    .venv/bin/python benchmarks/dp.py --rows 1000000

Synthetic Parquet: about three rows per person (pseudonym column), 20 offences, 10 years,
sentence lengths in months. Two query shapes, each timed as the first query (calibrating the
OpenDP measurement and hashing the file for the plan hash) and as the median of repeated
queries of the same shape (cached calibrated measurement; fresh noise every call):

  grouped count   count by offence over the 20 public keys, max_contributions=3
  mean            mean sentence, bounds (0, 240), max_contributions=3

Two baselines with polars over ``pl.scan_parquet``: "plain" is the naive aggregation (no key
filter, no per-person truncation, no noise); "plain+trunc" is the same aggregation after the
same per-person truncation, i.e. what any person-level bound costs without DP.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trenv.privacy.releases import QuerySpec, release

SEED = 20251125
OFFENCES = [f"offence_{i:02d}" for i in range(20)]
REPEATS = 5


def synthetic(n: int, path: Path) -> None:
    rng = np.random.default_rng(SEED)
    persons = max(1, n // 3)
    frame = pl.DataFrame(
        {
            "pid": pl.Series(rng.integers(0, persons, n)).cast(pl.String),
            "offence": pl.Series(rng.choice(OFFENCES, n)),
            "year": rng.integers(2015, 2025, n),
            "sentence_months": rng.pareto(1.5, n) * 6,
        }
    )
    frame.write_parquet(path)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(n: int, workdir: Path) -> list[dict[str, Any]]:
    path = workdir / f"dp_{n}.parquet"
    synthetic(n, path)

    def trunc() -> pl.LazyFrame:
        return pl.scan_parquet(path).filter(pl.col("pid").cum_count().over("pid") <= 3)

    shapes: dict[str, tuple[Callable[[], Any], Callable[[], Any], QuerySpec]] = {
        "grouped count": (
            lambda: pl.scan_parquet(path).group_by("offence").len().collect(),
            lambda: trunc().group_by("offence").len().collect(),
            QuerySpec(
                dataset=path,
                statistic="count",
                unit_column="pid",
                group_by={"offence": OFFENCES},
                max_contributions=3,
                rho=0.1,
            ),
        ),
        "mean": (
            lambda: pl.scan_parquet(path).select(pl.col("sentence_months").mean()).collect(),
            lambda: trunc().select(pl.col("sentence_months").clip(0, 240).mean()).collect(),
            QuerySpec(
                dataset=path,
                statistic="mean",
                column="sentence_months",
                bounds=(0, 240),
                unit_column="pid",
                max_contributions=3,
                rho=0.1,
            ),
        ),
    }
    rows = []
    for name, (plain, plain_trunc, spec) in shapes.items():
        plain()  # warm the file cache for both sides
        plain_t = statistics.median(timed(plain) for _ in range(REPEATS))
        trunc_t = statistics.median(timed(plain_trunc) for _ in range(REPEATS))
        first = timed(lambda spec=spec: release(spec))
        repeated = statistics.median(timed(lambda spec=spec: release(spec)) for _ in range(REPEATS))
        rows.append(
            {
                "rows": n,
                "query": name,
                "plain_s": plain_t,
                "plain_trunc_s": trunc_t,
                "dp_first_s": first,
                "dp_repeated_s": repeated,
                "ratio_first": first / plain_t,
                "ratio_repeated": repeated / plain_t,
                "ratio_repeated_vs_trunc": repeated / trunc_t,
            }
        )
        r = rows[-1]
        print(
            f"{n:>10,} {name:<14} plain {r['plain_s']:.3f}s  plain+trunc {trunc_t:.3f}s  "
            f"DP first {r['dp_first_s']:.3f}s ({r['ratio_first']:.1f}x)  "
            f"DP repeated {r['dp_repeated_s']:.3f}s ({r['ratio_repeated']:.1f}x plain, "
            f"{r['ratio_repeated_vs_trunc']:.2f}x plain+trunc)",
            flush=True,
        )
    path.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="rows (repeatable)")
    args = parser.parse_args()
    sizes = args.rows or [1_000_000, 10_000_000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            bench(n, Path(tmp))


if __name__ == "__main__":
    main()
