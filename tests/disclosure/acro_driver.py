"""Run ACRO on a CSV and write its cell masks as JSON (executed in ACRO's own venv).

Usage: python acro_driver.py SPEC.json OUT.json
SPEC: {"data": csv path, "index": col, "columns": col, "values": col|null,
       "aggfunc": str|null, "suppress": bool}
Kept free of trenv and of pytest: it runs under ACRO's pinned old pandas.
"""

import json
import sys

import pandas as pd
from acro import ACRO


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    df = pd.read_csv(spec["data"])
    session = ACRO(suppress=spec.get("suppress", False))
    kwargs = {}
    if spec.get("values"):
        kwargs = {"values": df[spec["values"]], "aggfunc": spec["aggfunc"]}
    table = session.crosstab(df[spec["index"]], df[spec["columns"]], **kwargs)
    record = session.results.get_index(-1)
    out = {
        "index": [str(x) for x in table.index],
        "columns": [str(x) for x in table.columns],
        "cells": record.sdc["cells"],
        "table": [[None if pd.isna(v) else float(v) for v in row] for row in table.to_numpy()],
    }
    with open(sys.argv[2], "w", encoding="utf-8") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main()
