"""DP outputs: a CSV is released without cell review only if it is exactly a committed
release in the server's budget ledger.

The ``.dp.json`` next to the CSV was written in the researcher's container, so it only says
which ledger entry to look at; every value is compared with the ledger's own copy of the
release (``DPRelease.model_dump(mode="json")``), never with the description.
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trenv.airlock.checks.grid import csv_rows
from trenv.airlock.checks.models import DPLedgerEntry, Finding, finding

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

SCHEMA = "trenv.dp-output/1"


def _equal(text: str, value: Any) -> bool:
    if value is None:
        return not text.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return text == str(value)
    try:
        number = float(text)
    except ValueError:
        return False
    return math.isclose(number, float(value), rel_tol=1e-9, abs_tol=1e-12)


def _values_problem(rows: list[list[str]], release: dict[str, Any]) -> str | None:
    """Why the CSV is not the ledger's release (None if it is)."""
    if not rows:
        return "the CSV is empty"
    header, data = rows[0], rows[1:]
    table = release.get("table")
    if table is None:
        records: list[dict[str, Any]] = [{header[0] if header else "value": release.get("value")}]
        if len(header) != 1:
            return "a single DP value must be a CSV with one column"
    else:
        records = list(table)
    if (
        header
        and header[0] == ""
        and data
        and [r[0] for r in data] == [str(i) for i in range(len(data))]
    ):
        header, data = header[1:], [r[1:] for r in data]  # pandas' unnamed row numbers
    if len(data) != len(records):
        return f"the CSV has {len(data)} rows, the ledger's release has {len(records)}"
    keys = set(records[0]) if records else set()
    unknown = [h for h in header if h not in keys] if table is not None else []
    if unknown or len(set(header)) != len(header):
        return f"the CSV has columns that are not in the ledger's release: {unknown}"
    for n, (row, rec) in enumerate(zip(data, records, strict=True)):
        if len(row) != len(header):
            return f"row {n + 1} of the CSV has {len(row)} fields, the header has {len(header)}"
        for name, text in zip(header, row, strict=True):
            value = rec.get(name) if table is not None else release.get("value")
            if not _equal(text, value):
                return f"row {n + 1}, column {name!r} is {text!r}; the ledger has {value!r}"
    return None


def check_dp(
    frozen: FrozenFile,
    dp_output: bytes,
    *,
    project: str,
    dp_lookup: Callable[[int], DPLedgerEntry | None],
) -> list[Finding]:
    def fail(message: str) -> list[Finding]:
        return [finding("dp-ledger", "fail", message)]

    if frozen.kind != "table":
        return fail("Only CSV files can be DP outputs.")
    try:
        desc = json.loads(dp_output)
    except ValueError:
        return fail("The DP output description (.dp.json) is not valid JSON.")
    if not isinstance(desc, dict) or desc.get("schema_version") != SCHEMA:
        return fail(f"The DP output description is not a {SCHEMA} document.")
    spend_id = desc.get("spend_id")
    if not isinstance(spend_id, int) or isinstance(spend_id, bool):
        return fail("The DP output description has no valid spend_id.")
    name = posixpath.basename(frozen.path)
    files = desc.get("files")
    if not isinstance(files, dict) or files.get(name) != frozen.sha256:
        return fail(f"{name} is not the file its DP output description names (sha256 differs).")
    entry = dp_lookup(spend_id)
    if entry is None:
        return fail(f"Privacy spend #{spend_id} is not in the budget ledger.")
    if entry.state != "committed":
        return fail(f"Privacy spend #{spend_id} is {entry.state}, not committed.")
    if entry.project != project or desc.get("project") != project:
        return fail(
            f"Privacy spend #{spend_id} belongs to project {entry.project!r}, not to "
            f"this request's project {project!r}."
        )
    if desc.get("dataset") != entry.dataset:
        return fail(
            f"Privacy spend #{spend_id} was on dataset {entry.dataset!r}, the "
            f"description says {desc.get('dataset')!r}."
        )
    release = entry.release
    if release is None:
        return fail(f"Privacy spend #{spend_id} has no recorded release.")
    if desc.get("plan_hash") != entry.plan_hash or release.get("plan_hash") != entry.plan_hash:
        return fail(f"The query plan of {name} is not the plan of privacy spend #{spend_id}.")
    rho = desc.get("rho")
    if not isinstance(rho, int | float) or not math.isclose(float(rho), entry.rho, rel_tol=1e-9):
        return fail(f"The description's rho {rho!r} is not the ledger's {entry.rho!r}.")
    try:
        rows = csv_rows(frozen.data)
    except UnicodeDecodeError:
        return fail(f"{name} is not UTF-8 text.")
    problem = _values_problem(rows, release)
    if problem:
        return fail(f"{name} is not the ledger's release of spend #{spend_id}: {problem}.")
    return [
        finding(
            "dp-ledger",
            "pass",
            f"{name} is exactly the committed DP release of spend "
            f"#{spend_id} (rho {entry.rho:g} on {entry.dataset}); DP outputs need no "
            "cell review.",
        )
    ]
