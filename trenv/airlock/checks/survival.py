"""Survival outputs saved with ``tre.save``: Kaplan-Meier step tables and Cox models.

A Kaplan-Meier CSV must be exactly its record's published steps (the same header, the same
rows in the same order, every number equal), and the record is re-checked step by step
under the project's policy (:mod:`trenv.disclosure.survival_recheck`); a failing step is a
finding that marks its row. The figure saved beside it is re-checked through the same
record, and a checker compares the picture with the table. A Cox model's record must agree
with its own arithmetic and with the coefficients in its CSV.
"""

from __future__ import annotations

import math

from trenv.airlock.checks.models import Finding, finding
from trenv.disclosure.policy import load_policy
from trenv.disclosure.recheck import recheck
from trenv.disclosure.record import OutputRecord
from trenv.disclosure.survival import STEP_COLUMNS
from trenv.disclosure.survival_recheck import cox_problems, survival_problems

_COUNTS = ("at_risk", "events", "censored")


def step_header(record: OutputRecord) -> list[str]:
    by = record.survival.by if record.survival else []
    return [*by, "time", *STEP_COLUMNS]


def _rows_of(record: OutputRecord) -> list[tuple[int, int, list[str], list[float]]]:
    """(group, step, labels, numbers in header order) for every published step."""
    out = []
    check = record.survival
    for gi, group in enumerate(check.groups if check else []):
        if group.withheld:
            continue
        for k, s in enumerate(group.steps):
            numbers = [s.time, *(float(getattr(s, c)) for c in STEP_COLUMNS)]
            out.append((gi, k, list(group.label), numbers))
    return out


def _equal(text: str, value: float, exact: bool) -> bool:
    try:
        shown = float(text)
    except ValueError:
        return False
    if exact:
        return shown == value
    return math.isclose(shown, value, rel_tol=1e-12, abs_tol=1e-15)


def _match(record: OutputRecord, rows: list[list[str]]) -> tuple[list[Finding], dict]:
    header = step_header(record)
    if not rows or rows[0] != header:
        got = rows[0] if rows else []
        return [
            finding(
                "record-match",
                "fail",
                f"The CSV's header is {got}, its survival record's steps need {header}.",
            )
        ], {}
    data = rows[1:]
    expected = _rows_of(record)
    labels = len(header) - len(STEP_COLUMNS) - 1
    exact = [False, *(c in _COUNTS for c in STEP_COLUMNS)]
    where: dict[tuple[int, int], int] = {}
    differs: list[tuple[int, int]] = []
    for ri, (row, (gi, k, label, numbers)) in enumerate(zip(data, expected, strict=False)):
        where[(gi, k)] = ri
        if len(row) != len(header):
            differs.append((ri, 0))
            continue
        if row[:labels] != label:
            differs.append((ri, 0))
        for j, (text, value, ex) in enumerate(zip(row[labels:], numbers, exact, strict=True)):
            if not _equal(text, value, ex):
                differs.append((ri, labels + j))
    out = []
    if differs:
        out.append(
            finding(
                "record-match",
                "fail",
                f"{len(differs)} values of the CSV differ from the steps in its output record "
                "(the file was edited after tre.save).",
                differs,
            )
        )
    if len(data) != len(expected):
        out.append(
            finding(
                "record-match",
                "fail",
                f"The CSV has {len(data)} steps, its output record {len(expected)}.",
            )
        )
    return out, where


def survival_findings(
    record: OutputRecord, policy: str, rows: list[list[str]] | None
) -> list[Finding]:
    """The match of the CSV (``rows``; None for the figure) and the server's re-check."""
    out: list[Finding] = []
    where: dict[tuple[int, int], int] = {}
    if rows is not None:
        problems, where = _match(record, rows)
        if problems:
            return problems
        out.append(
            finding(
                "record-match",
                "pass",
                "Every step in the CSV is the published step of its output record.",
            )
        )
    pol = load_policy(policy)
    try:
        steps = survival_problems(record, pol)
        result = recheck(record, pol)
    except Exception as exc:  # the record is untrusted input; any crash is a refusal
        return [
            *out,
            finding(
                "recheck",
                "fail",
                f"The survival record could not be re-checked ({type(exc).__name__}: {exc}).",
            ),
        ]
    if result.ok:
        out.append(
            finding(
                "recheck",
                "pass",
                f"Every published step passes policy {pol.name} v{pol.version} again on the "
                "server, and every estimate is the product-limit estimate of its counts.",
            )
        )
        return out
    named = {str(p): p for p in steps}
    header = step_header(record)
    columns = [header.index(c) for c in _COUNTS]
    for problem in result.problems:
        step = named.get(problem)
        row = where.get((step.group, step.step)) if step and step.step is not None else None
        cells = [(row, j) for j in columns] if row is not None else []
        rule = "recheck-survival" if step is not None else "recheck"
        out.append(finding(rule, "fail", f"Re-checked under {pol.name}: {problem}.", cells))
    return out


def cox_findings(record: OutputRecord, rows: list[list[str]]) -> list[Finding]:
    """A Cox model's record against itself and the coefficients its CSV lists."""
    model = record.model
    if model is None or model.model_type != "CoxPH":
        return []
    names = [row[0] for row in rows[1:] if row]
    problems = cox_problems(model, names)
    if not problems:
        return [
            finding(
                "cox-record",
                "pass",
                f"{model.events} events and {model.parameters} coefficients give the "
                f"{model.df_resid:g} residual degrees of freedom checked.",
            )
        ]
    return [finding("cox-record", "fail", f"The Cox model's record: {p}.") for p in problems]
