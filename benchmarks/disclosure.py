"""Benchmark: plain pandas vs ACRO vs trenv's disclosure engine on synthetic justice data.

    .venv/bin/python benchmarks/disclosure.py            # 1M and 10M rows
    .venv/bin/python benchmarks/disclosure.py --rows 1000000
    .venv/bin/python benchmarks/disclosure.py --no-acro --repeat 3   # best of 3 runs

Synthetic rows: 12 regions x 10 years x 20 offences (Zipf-like frequencies) x 8 age
bands, heavy-tailed (Pareto) sentence lengths, about three rows per person. Two tables:

  counts  crosstab  [region, year] x [offence, age band], margins   (19,200 cells)
  sums    pivot     [region, year] x offence, sum of sentence, margins (2,400 cells)

ACRO 1.0.2 needs pandas<=2.3.3, so it runs in a virtual environment of its own (created
on first use, the same one the tests use) as a subprocess that regenerates the same data
from the same seed and times itself. ACRO is run at 1M rows only: at 10M its suppression
(one pandas query per flagged cell) takes tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SEED = 20251125


def synthetic(n: int, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    offence_p = 1 / np.arange(1, 21) ** 1.3
    offence_p /= offence_p.sum()

    def cat(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=labels)

    return pd.DataFrame(
        {
            "region": cat(rng.integers(0, 12, n), [f"region{i:02d}" for i in range(12)]),
            "year": cat(rng.integers(0, 10, n), [str(2015 + i) for i in range(10)]),
            "offence": cat(rng.choice(20, n, p=offence_p), [f"off{i:02d}" for i in range(20)]),
            "age_band": cat(rng.integers(0, 8, n), [f"age{i}" for i in range(8)]),
            "sentence": np.round(rng.pareto(1.5, n) * 3 + 0.5, 1),
            "person": rng.integers(0, max(n // 3, 1), n),
        }
    )


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# ---------------------------------------------------------------- ACRO side (own venv)


def acro_worker(n: int) -> None:
    """Runs inside ACRO's venv: time ACRO on the same data, print JSON."""
    import logging

    from acro import ACRO

    logging.disable(logging.CRITICAL)
    df = synthetic(n)
    for suppress in (False, True):
        session = ACRO(suppress=suppress)
        key = "suppress" if suppress else "check"
        t_count, _ = _timed(
            lambda s=session: s.crosstab(
                [df.region, df.year], [df.offence, df.age_band], margins=True
            )
        )
        # One JSON line per measurement, flushed: a long suppression run still reports
        # what it has measured so far.
        print(json.dumps({f"acro_{key}_counts": t_count}), flush=True)
        t_sum, _ = _timed(
            lambda s=session: s.pivot_table(
                df,
                values="sentence",
                index=["region", "year"],
                columns="offence",
                aggfunc="sum",
                margins=True,
            )
        )
        print(json.dumps({f"acro_{key}_sums": t_sum}), flush=True)


def acro_python() -> Path:
    venv = Path(os.environ.get("TRENV_ACRO_VENV", ROOT / ".pytest_cache/d/acro-venv"))
    python = venv / "bin" / "python"
    if not (venv / ".acro-1.0.2").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "acro==1.0.2"], check=True)
        (venv / ".acro-1.0.2").touch()
    return python


def run_acro(n: int, timeout: float) -> dict[str, float]:
    """ACRO's timings; a measurement still running at ``timeout`` is reported as a lower
    bound (``timeout`` minus what was already spent)."""
    cmd = [str(acro_python()), __file__, "--acro-worker", str(n)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp", timeout=timeout)
        stdout = proc.stdout
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        stdout = raw.decode() if isinstance(raw, bytes) else raw
    out: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    spent = time.perf_counter() - start
    for key in (
        "acro_check_counts",
        "acro_check_sums",
        "acro_suppress_counts",
        "acro_suppress_sums",
    ):
        if key not in out:
            out[key] = float("nan")
            out[f"{key}_at_least"] = max(spent - sum(v for v in out.values() if v == v), 0.0)
            break  # later measurements never started
    return out


# ---------------------------------------------------------------- pandas and trenv


def run_local(n: int, repeat: int = 1) -> dict[str, float]:
    """Times of pandas and trenv on both tables; with ``repeat`` > 1 each is run that many
    times in turn and the fastest run counts (on a shared machine single runs vary by 2x)."""
    from trenv.disclosure import check_table

    df = synthetic(n)
    jobs = {
        "pandas_counts": lambda: pd.crosstab(
            [df.region, df.year], [df.offence, df.age_band], margins=True
        ),
        "pandas_sums": lambda: pd.pivot_table(
            df,
            values="sentence",
            index=["region", "year"],
            columns="offence",
            aggfunc="sum",
            margins=True,
            observed=False,
        ),
        "trenv_counts": lambda: check_table(
            df,
            index=["region", "year"],
            columns=["offence", "age_band"],
            contributor="person",
            margins=True,
        ),
        "trenv_sums": lambda: check_table(
            df,
            index=["region", "year"],
            columns=["offence"],
            values="sentence",
            statistic="sum",
            contributor="person",
            margins=True,
        ),
    }
    res: dict[str, float] = {}
    checks = {}
    for _ in range(max(repeat, 1)):
        for name, job in jobs.items():
            secs, out = _timed(job)
            res[name] = min(res.get(name, secs), secs)
            checks[name] = out
    for name in ("counts", "sums"):
        check = checks[f"trenv_{name}"]
        res[f"cells_{name}"] = float(check.suppressed.size)
        res[f"suppressed_{name}"] = float(check.suppressed.to_numpy().sum())
        res[f"audit_ok_{name}"] = float(bool(check.record.audit_passed))
    return res


def report(n: int, res: dict[str, float]) -> None:
    print(f"\n{n:,} rows")
    for table in ("counts", "sums"):
        base = res[f"pandas_{table}"]
        print(
            f"  {table}: {int(res[f'cells_{table}']):,} cells, "
            f"{int(res[f'suppressed_{table}']):,} suppressed, "
            f"LP audit {'passed' if res[f'audit_ok_{table}'] else 'FAILED'}"
        )
        rows = [
            ("plain pandas", base),
            ("trenv (all checks + suppression + audit)", res[f"trenv_{table}"]),
        ]
        for label, key in (("ACRO, checks only", "check"), ("ACRO, with suppression", "suppress")):
            name = f"acro_{key}_{table}"
            if name in res and res[name] == res[name]:
                rows.append((label, res[name]))
            elif f"{name}_at_least" in res:
                rows.append((label + " (stopped, at least)", res[f"{name}_at_least"]))
        for label, secs in rows:
            print(f"    {label:<42} {secs:9.3f} s   {secs / base:8.1f}x pandas")
        done = res.get(f"acro_suppress_{table}", float("nan"))
        bound = res.get(f"acro_suppress_{table}_at_least")
        if done == done:
            print(
                f"    trenv is {done / res[f'trenv_{table}']:.0f}x faster than ACRO's suppression"
            )
        elif bound is not None:
            print(
                f"    trenv is more than {bound / res[f'trenv_{table}']:.0f}x faster than "
                "ACRO's suppression"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--acro-rows", type=int, default=1_000_000)
    parser.add_argument("--no-acro", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of pandas and trenv; the fastest counts"
    )
    parser.add_argument("--acro-timeout", type=float, default=1800.0)
    parser.add_argument("--acro-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.acro_worker:
        acro_worker(args.acro_worker)
        return
    for n in args.rows:
        res = run_local(n, args.repeat)
        if not args.no_acro and n <= args.acro_rows:
            res.update(run_acro(n, args.acro_timeout))
        report(n, res)


if __name__ == "__main__":
    main()
