"""Small builders for hand-made tables with known answers."""

from __future__ import annotations

import pandas as pd


def cells(spec: dict[tuple[str, str], list[float]], start: int = 0) -> pd.DataFrame:
    """One row per value, each value from a new person, in the given (row, column) cell."""
    rows = []
    pid = start
    for (a, b), values in spec.items():
        for v in values:
            rows.append({"a": a, "b": b, "v": v, "pid": pid})
            pid += 1
    return pd.DataFrame(rows)


def flags_of(check, row: str, col: str) -> set[str]:  # type: ignore[no-untyped-def]
    text = check.flags.loc[row, col]
    return set(text.split("; ")) if text else set()
