"""Benchmark: plain pandas vs ACRO vs trenv's disclosure engine on synthetic justice data.

    .venv/bin/python benchmarks/disclosure.py            # 1M and 10M rows
    .venv/bin/python benchmarks/disclosure.py --rows 1000000
    .venv/bin/python benchmarks/disclosure.py --no-acro --repeat 5   # best of 5 runs

Synthetic rows: 12 regions x 10 years x 20 offences (Zipf-like frequencies) x 8 age
bands, heavy-tailed (Pareto) sentence lengths, about three rows per person. Two tables:

  counts  crosstab  [region, year] x [offence, age band], margins   (19,200 cells)
  sums    pivot     [region, year] x offence, sum of sentence, margins (2,400 cells)

Every local measurement is timed as wall time and as the process's CPU time
(``time.process_time``, all threads): on a shared machine the wall time also counts
waiting for a core, the CPU time does not. With ``--repeat`` each job runs that many times
in turn and the fastest wall and the fastest CPU time count (separately). Beside plain
pandas, the count table has a *limit*: the category codes combined into one cell index
and one ``bincount`` (what any count table costs at least), and trenv's count table is
also timed without ``contributor=`` (every row its own contributor).

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


def _timed_cpu(fn):  # type: ignore[no-untyped-def]
    """(wall seconds, CPU seconds of the whole process, result)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def count_limit(df: pd.DataFrame, variables: list[str]) -> np.ndarray:
    """The least a count table costs: the categories' codes (a categorical carries them)
    combined into one cell index by multiply-adds, and one ``bincount``."""
    codes = [df[v].cat.codes.to_numpy() for v in variables]
    sizes = [len(df[v].cat.categories) for v in variables]
    cell = codes[0].astype(np.int64)
    for cd, size in zip(codes[1:], sizes[1:], strict=True):
        cell *= size
        cell += cd
    return np.bincount(cell, minlength=int(np.prod(sizes)))


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
    """Wall and CPU times of pandas, the count limit and trenv on both tables; with
    ``repeat`` > 1 each job runs that many times in turn and the fastest wall time and the
    fastest CPU time count (on a shared machine single runs vary by 2x)."""
    from trenv.disclosure import check_table, load_policy

    df = synthetic(n)
    # The default policy, except that a table may count rows rather than people.
    rows_policy = load_policy("trenv-default").model_copy(update={"contributor_required": False})
    count_table = {"index": ["region", "year"], "columns": ["offence", "age_band"]}
    jobs = {
        "pandas_counts": lambda: pd.crosstab(
            [df.region, df.year], [df.offence, df.age_band], margins=True
        ),
        "limit_counts": lambda: count_limit(df, ["region", "year", "offence", "age_band"]),
        "pandas_sums": lambda: pd.pivot_table(
            df,
            values="sentence",
            index=["region", "year"],
            columns="offence",
            aggfunc="sum",
            margins=True,
            observed=False,
        ),
        "trenv_counts": lambda: check_table(df, **count_table, contributor="person", margins=True),
        "trenv_counts_rows": lambda: check_table(
            df, **count_table, margins=True, policy=rows_policy
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
            wall, cpu, out = _timed_cpu(job)
            res[name] = min(res.get(name, wall), wall)
            res[f"{name}_cpu"] = min(res.get(f"{name}_cpu", cpu), cpu)
            checks[name] = out
    for name in ("counts", "sums"):
        check = checks[f"trenv_{name}"]
        res[f"cells_{name}"] = float(check.suppressed.size)
        res[f"suppressed_{name}"] = float(check.suppressed.to_numpy().sum())
        res[f"audit_ok_{name}"] = float(bool(check.record.audit_passed))
    return res


def report(n: int, res: dict[str, float]) -> None:
    print(f"\n{n:,} rows (wall s / CPU s; ratios of wall / of CPU)")
    for table in ("counts", "sums"):
        base, base_cpu = res[f"pandas_{table}"], res[f"pandas_{table}_cpu"]
        print(
            f"  {table}: {int(res[f'cells_{table}']):,} cells, "
            f"{int(res[f'suppressed_{table}']):,} suppressed, "
            f"LP audit {'passed' if res[f'audit_ok_{table}'] else 'FAILED'}"
        )
        rows = [("plain pandas", f"pandas_{table}")]
        if table == "counts":
            rows += [
                ("limit: codes + one bincount", "limit_counts"),
                ("trenv, counting rows (no contributor)", "trenv_counts_rows"),
            ]
        rows.append(("trenv (all checks + suppression + audit)", f"trenv_{table}"))
        for label, key in rows:
            wall, cpu = res[key], res[f"{key}_cpu"]
            line = (
                f"    {label:<42} {wall:7.3f} / {cpu:6.3f} s   "
                f"{wall / base:5.1f}x / {cpu / base_cpu:4.1f}x pandas"
            )
            if table == "counts" and key.startswith("trenv"):
                limit, limit_cpu = res["limit_counts"], res["limit_counts_cpu"]
                line += f"   {wall / limit:5.1f}x / {cpu / limit_cpu:4.1f}x limit"
            print(line)
        for label, key in (("ACRO, checks only", "check"), ("ACRO, with suppression", "suppress")):
            name = f"acro_{key}_{table}"
            if name in res and res[name] == res[name]:
                print(
                    f"    {label:<42} {res[name]:7.3f} s (wall)   {res[name] / base:5.1f}x pandas"
                )
            elif f"{name}_at_least" in res:
                print(f"    {label + ' (stopped, at least)':<42} {res[f'{name}_at_least']:7.3f} s")
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
