"""Differencing in the notebook: a new table against what was saved here and against the
project's tables on the server.

Two sources, because neither sees everything: the workspace's ``outputs/`` holds this
researcher's saved tables, also those not yet in any request; the trenv API
(``POST /api/differencing/check``) combines the table with every table of the project that
has left or could leave the TRE, other members' included, exactly as the airlock will when
the table is requested. Both give the same two verdicts:

- ``differencing``: with the other tables, a suppressed cell can be pinned down (the linear
  programme over the finest cross-classification, ``trenv.disclosure.differencing``);
- ``population-difference``: a published cell describes nearly the same people as a cell of
  another table, a few people or rows apart (``trenv.disclosure.populations``).

The server's answer is advisory here too (the airlock checks again); when the API cannot be
reached the verdicts say so, and the local check still runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from trenv.disclosure.differencing import Ledger
from trenv.disclosure.populations import differencing_findings, near_populations
from trenv.disclosure.record import OutputRecord, RuleVerdict
from trenv.lab import session
from trenv.lab.api import Api, ApiError, Endpoint, build
from trenv.wire.differencing import CHECK_PATH, DifferencingCheck, DifferencingReport

TIMEOUT = 60  # seconds: the server's linear programmes over the project's tables
LINEAR = "differencing"
POPULATIONS = "population-difference"
# The server's rule ids for the same two checks (trenv.airlock.differencing).
SERVER_RULES = {"differencing-server": LINEAR, POPULATIONS: POPULATIONS}


def saved_ledger() -> Ledger:
    """Every table record saved in the workspace, oldest first."""
    folder = session.workspace() / "outputs"
    records = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.record.json"), key=lambda p: p.stat().st_mtime):
            try:
                records.append(OutputRecord.model_validate(json.loads(path.read_text())))
            except (ValueError, OSError):
                continue  # not a trenv record (or unreadable): nothing to combine with
    return Ledger(records)


Cell = list[list[str]]  # [row labels, column labels]


@dataclass
class Problems:
    """What each check found, by rule (messages and the cells they name), and what could
    not be consulted."""

    found: dict[str, list[str]] = field(default_factory=lambda: {LINEAR: [], POPULATIONS: []})
    cells: dict[str, list[Cell]] = field(default_factory=lambda: {LINEAR: [], POPULATIONS: []})
    unchecked: list[str] = field(default_factory=list)

    def add(self, rule: str, messages: Iterable[str], cells: Iterable[Cell] = ()) -> None:
        for message in messages:
            if message not in self.found[rule]:
                self.found[rule].append(message)
        for cell in cells:
            if cell not in self.cells[rule]:
                self.cells[rule].append(cell)


def local_problems(record: OutputRecord, problems: Problems) -> None:
    """The record against the tables saved in this workspace."""
    records = saved_ledger().records
    # Tables about other data (contradicting totals) are left out, not combined.
    findings = differencing_findings(records, record)
    problems.add(
        LINEAR,
        [f"{f.row}/{f.column}: {f.reason()}" for f in findings],
        [[f.row, f.column] for f in findings],
    )
    names = [f"saved table {k + 1}" for k in range(len(records))]
    problems.add(POPULATIONS, near_populations(records, record, names=names))


def project_problems(record: OutputRecord, problems: Problems) -> None:
    """The record against the project's tables, on the server (when the session has one)."""
    endpoint = Endpoint.from_environment()
    if endpoint is None:
        return  # not in a trenv notebook server: nothing on the server to combine with
    body = build(DifferencingCheck, {"record": record.model_dump(mode="json")}, ApiError)
    try:
        reply = Api(endpoint, timeout=TIMEOUT).call("POST", CHECK_PATH, body)
        report = DifferencingReport.model_validate(reply)
    except (ApiError, ValueError) as exc:
        problems.unchecked.append(
            f"the project's tables could not be consulted ({exc}); the airlock will combine "
            "this table with them when it is requested"
        )
        return
    for finding in report.findings:
        if finding.status != "pass":
            problems.add(SERVER_RULES[finding.rule_id], [f"project: {finding.message}"])


def with_differencing(record: OutputRecord) -> OutputRecord:
    """Add the ``differencing`` and ``population-difference`` verdicts: does this table, with
    the tables saved here and the project's on the server, pin a suppressed cell down or
    isolate a few people? Survival tables meet earlier survival tables of the same
    duration, event and groups (``populations.near_survival``)."""
    if record.kind not in ("table", "survival"):
        return record
    problems = Problems()
    local_problems(record, problems)
    project_problems(record, problems)
    verdicts = [
        RuleVerdict(
            rule_id=rule,
            action="suppress",
            status="fail" if found else "pass",
            flagged_cells=len(found),
            # A pass that could not ask the server says so (the airlock still checks).
            detail="; ".join(found or problems.unchecked),
            cells=problems.cells[rule],
        )
        for rule, found in problems.found.items()
    ]
    status = "fail" if any(v.status == "fail" for v in verdicts) else record.status
    return record.model_copy(update={"rules": [*record.rules, *verdicts], "status": status})
