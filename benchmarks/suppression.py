"""Benchmark: the secondary-suppression audit, old (a git revision) against new, side by side.

    .venv/bin/python benchmarks/suppression.py                  # every case, old at 4bfdafc
    .venv/bin/python benchmarks/suppression.py --sizes 2000 5000 --old-timeout 120
    .venv/bin/python benchmarks/suppression.py --old-ref <commit> --only audit

Worst-case tables: two-way tables with margins, square-ish, of about 2k to 20k cells, with
nearly every inner cell suppressed:

  counts-1   Poisson(1) counts, every cell below 10 suppressed (all of them): no single
             rectangle of hidden cells can move a cell by the 5 the profile asks for
  counts-3   Poisson(3) counts, every cell below 10 suppressed (about 99.9%)
  sums       Pareto sums, 95% of the inner cells suppressed, a range of 25% of the value

  check_table  ``check_table`` end to end on the data of ``benchmarks/disclosure.py`` (counts
             by [region, year] x [offence, age band], 19,481 cells with margins) at 20k
             rows, where nearly every cell is suppressed, and at 200k rows (75%); the old
             side is the whole ``trenv`` package of ``--old-ref`` (``git archive``)

Each case times ``audit`` on that pattern and ``secondary_suppression`` from it (the
pattern as primary suppressions), in a fresh process each, through the two-way (``shape``)
path; ``generic`` times the audit of the counts-1 pattern through the generic-relations
path (``shape=None``, as one-way, hierarchical and linked tables use). The old code is
``trenv/disclosure/suppression.py`` and ``lp.py`` as of ``--old-ref``, loaded from git;
an old run that exceeds ``--old-timeout`` is shown as "> N s". Both must give the same
verdict (``ok``), which is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {2000: (44, 44), 5000: (70, 70), 10000: (99, 99), 20000: (140, 140)}


def _table(case: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(full table with margins, hidden mask, required width), flat."""
    r, c = SHAPES[size]
    rng = np.random.default_rng(size)
    if case.startswith("counts") or case == "generic":
        lam = 3.0 if case == "counts-3" else 1.0
        inner = rng.poisson(lam, (r, c)).astype(float)
        hidden_inner = inner < 10
    else:
        inner = np.round(rng.pareto(1.5, (r, c)) * 30 + 0.5, 1)
        hidden_inner = rng.random((r, c)) < 0.95
    full = np.zeros((r + 1, c + 1))
    full[:r, :c] = inner
    full[:r, c] = inner.sum(axis=1)
    full[r, :c] = inner.sum(axis=0)
    full[r, c] = inner.sum()
    hidden = np.zeros(full.shape, dtype=bool)
    hidden[:r, :c] = hidden_inner
    required = 0.25 * np.abs(full)
    if case != "sums":
        required = np.maximum(required, 5.0)
    return full, hidden, required


def worker(module_dir: str, case: str, size: int, what: str) -> None:
    """Runs in its own process: time one call of the module in ``module_dir``."""
    sys.path.insert(0, module_dir)
    import suppression_under_test as sut  # type: ignore[import-not-found]

    full, hidden, required = _table(case, size)
    r, c = SHAPES[size]
    n = full.size
    shape = None if case == "generic" else full.shape
    args = (full.ravel(), hidden.ravel(), sut.table_relations(r, c), np.zeros(n))
    start = time.perf_counter()
    if what == "audit":
        result = sut.audit(*args, np.full(n, np.inf), required.ravel(), shape)
        extra = 0
    else:
        supp, result = sut.secondary_suppression(
            *args, np.full(n, np.inf), required.ravel(), 50, shape
        )
        extra = int(supp.sum() - hidden.sum())
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "ok": bool(result.ok), "added": extra}))


def table_worker(tree: str, rows: int) -> None:
    """Runs in its own process: ``check_table`` of ``tree``'s trenv on the counts table."""
    import importlib.util

    sys.path.insert(0, tree)
    from trenv.disclosure import check_table

    spec = importlib.util.spec_from_file_location("bench_data", ROOT / "benchmarks/disclosure.py")
    assert spec is not None and spec.loader is not None
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    df = data.synthetic(rows)
    start = time.perf_counter()
    check = check_table(
        df,
        index=["region", "year"],
        columns=["offence", "age_band"],
        contributor="person",
        margins=True,
    )
    seconds = time.perf_counter() - start
    supp = check.suppressed.to_numpy()
    print(
        json.dumps(
            {"seconds": seconds, "ok": bool(check.record.audit_passed), "added": int(supp.sum())}
        )
    )


def _old_tree(ref: str) -> str:
    """A directory holding the ``trenv`` package as of ``ref``."""
    out = tempfile.mkdtemp(prefix="trenv-old-")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "trenv"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", out], input=archive, check=True)
    return out


def _module_dir(ref: str | None) -> str:
    """A directory with ``suppression_under_test`` (and its helpers) of ``ref``, or of
    the working tree when ``ref`` is None."""
    out = Path(tempfile.mkdtemp(prefix="trenv-bench-"))
    if ref is None:
        (out / "suppression_under_test.py").write_text(
            f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
            "from trenv.disclosure.suppression import *  # noqa: F403\n"
            "from trenv.disclosure.suppression import audit, secondary_suppression, "
            "table_relations  # noqa: F401\n",
            encoding="utf-8",
        )
        return str(out)

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    (out / "old_lp.py").write_text(show("trenv/disclosure/lp.py"), encoding="utf-8")
    code = show("trenv/disclosure/suppression.py").replace(
        "from trenv.disclosure.lp import", "from old_lp import"
    )
    (out / "suppression_under_test.py").write_text(code, encoding="utf-8")
    return str(out)


def _run(module_dir: str, case: str, size: int, what: str, timeout: float) -> dict | None:
    if case == "check_table":
        cmd = [sys.executable, __file__, "--table-worker", module_dir, str(size)]
    else:
        cmd = [sys.executable, __file__, "--worker", module_dir, case, str(size), what]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-ref", default="4bfdafc", help="git revision of the old code")
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(SHAPES), choices=SHAPES)
    parser.add_argument(
        "--cases", nargs="+", default=["counts-1", "counts-3", "sums", "generic", "check_table"]
    )
    parser.add_argument("--table-rows", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--only", choices=["audit", "secondary"], default=None)
    parser.add_argument("--old-timeout", type=float, default=300.0)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--table-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        module_dir, case, size, what = args.worker
        worker(module_dir, case, int(size), what)
        return
    if args.table_worker:
        table_worker(args.table_worker[0], int(args.table_worker[1]))
        return
    old_dir, new_dir = _module_dir(args.old_ref), _module_dir(None)
    old_tree = _old_tree(args.old_ref) if "check_table" in args.cases else ""
    print(f"old = {args.old_ref}, new = working tree; seconds, fresh process per run")
    header = (
        f"{'case':<10}{'cells':>7}  {'call':<10}{'old s':>10}{'new s':>9}{'ratio':>9}  ok old/new"
    )
    print(header)
    print("-" * len(header))
    for case in args.cases:
        table = case == "check_table"
        for size in args.table_rows if table else args.sizes:
            calls = (
                ["rows"] if table else ["audit"] if case == "generic" else ["audit", "secondary"]
            )
            for what in calls:
                if args.only and what != args.only:
                    continue
                if table:
                    cells = f"{size // 1000}k rows"
                    new_at, old_at = str(ROOT), old_tree
                else:
                    r, c = SHAPES[size]
                    cells = str((r + 1) * (c + 1))
                    new_at, old_at = new_dir, old_dir
                new = _run(new_at, case, size, what, timeout=3600)
                old = _run(old_at, case, size, what, timeout=args.old_timeout)
                assert new is not None
                old_s = f"> {args.old_timeout:.0f}" if old is None else f"{old['seconds']:.2f}"
                ratio = (
                    f"> {args.old_timeout / new['seconds']:.0f}x"
                    if old is None
                    else f"{old['seconds'] / new['seconds']:.1f}x"
                )
                ok_old = "-" if old is None else str(old["ok"])
                print(
                    f"{case:<13}{cells:>9}  {what:<10}{old_s:>10}{new['seconds']:>9.2f}"
                    f"{ratio:>9}  {ok_old}/{new['ok']}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
