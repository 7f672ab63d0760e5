"""Differencing across a project's tables when they are not all about the same data.

``trenv.disclosure.differencing.Ledger`` treats every comparable count or sum table as a
fact about one population. A project's tables are often about different ones (a follow-up
cohort, a subset of seizures): their totals contradict each other and the combined linear
programme is infeasible, which the engine reports as ``ValueError("published facts are
inconsistent")``. Tables that contradict each other cannot describe the same people, so
combining them tells an attacker nothing; the new table is then checked against the
largest group of earlier tables (newest first) that is consistent with it.

Survival tables are compared the same way with earlier survival tables: the people at risk
at a boundary both publish, and the events up to it (``near_survival``).

Used by the notebook (``trenv.lab.ledger``) and the airlock
(``trenv.airlock.server_differencing``), so both see the same verdict. Depends on
``trenv.disclosure`` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from trenv.disclosure.differencing import Finding, Ledger
from trenv.disclosure.record import OutputRecord

INCONSISTENT = "published facts are inconsistent"


def _inconsistent(error: ValueError) -> bool:
    return INCONSISTENT in str(error)


def differencing_findings(records: Sequence[OutputRecord], new: OutputRecord) -> list[Finding]:
    """Suppressed cells that ``new`` helps pin down with the earlier ``records``."""
    try:
        return Ledger(list(records)).check(new)
    except ValueError as error:
        if not _inconsistent(error):
            raise
    group: list[OutputRecord] = []
    found: list[Finding] = []
    for record in reversed(records):  # the newest releases matter most
        try:
            found = Ledger([*group, record]).check(new)
        except ValueError as error:
            if not _inconsistent(error):
                raise
            continue  # contradicts the group: about other data
        group.append(record)
    return found


def _cell_keys(record: OutputRecord) -> dict[tuple[object, ...], float]:
    """Published cells by (dimensions, labels): the same key means the same definition."""
    cells = record.cells
    dims = (tuple(record.index), tuple(record.columns))
    return {
        (dims, tuple(row), tuple(column)): float(value)
        for row, column, value in zip(cells.row, cells.column, cells.published, strict=True)
        if value is not None
    }


def near_populations(
    records: Sequence[OutputRecord],
    new: OutputRecord,
    *,
    names: Sequence[str] | None = None,
) -> list[str]:
    """Counts of the same cell in two tables that differ by fewer people than the threshold.

    Two tables of *slightly* different populations (all offenders, then all but one) are the
    classic differencing attack: the linear programme cannot see it, because their totals
    simply contradict; but the difference of the two counts is a count of the few people
    left out. Flag every such pair of published cells (0 < difference < threshold).
    ``names[i]`` names ``records[i]`` in the messages (default: "table i+1"). Survival
    tables are compared with earlier survival tables (``near_survival``)."""
    if new.kind == "survival":
        return near_survival(records, new, names=names)
    if new.kind != "table" or new.statistic != "count" or new.normalize is not None:
        return []
    threshold = float(new.policy_parameters.get("threshold", {}).get("min_contributors", 0))
    if threshold <= 0:
        return []
    mine = _cell_keys(new)
    problems: list[str] = []
    for position, record in enumerate(records):
        if record.kind != "table" or record.statistic != "count" or record.normalize is not None:
            continue
        label = names[position] if names is not None else f"table {position + 1}"
        for key, value in _cell_keys(record).items():
            other = mine.get(key)
            if other is not None and 0 < abs(other - value) < threshold:
                _, row, column = key
                problems.append(
                    f"{'/'.join(map(str, row))} x {'/'.join(map(str, column)) or '-'}: "
                    f"{other:g} here, {value:g} in {label}; the difference "
                    f"isolates {abs(other - value):g} people (fewer than {threshold:g})"
                )
    return problems


def _survival_points(record: OutputRecord) -> dict[tuple[object, ...], float]:
    """What a survival table says about its population, by (definition, group, quantity,
    time): the people still at risk at each published boundary and the events up to it."""
    check = record.survival
    if check is None:
        return {}
    meaning = (check.duration, check.event, check.time_unit, tuple(check.by))
    points: dict[tuple[object, ...], float] = {}
    for group in check.groups:
        if group.withheld or not group.steps:
            continue
        label = tuple(group.label)
        events = 0
        for step in group.steps:
            points[(meaning, label, "at risk", step.time_from)] = step.at_risk
            points[(meaning, label, "events up to", step.time_from)] = events
            events += step.events
        last = group.steps[-1]
        points[(meaning, label, "at risk", last.time)] = last.at_risk - last.events - last.censored
        points[(meaning, label, "events up to", last.time)] = events
    return points


def near_survival(
    records: Sequence[OutputRecord],
    new: OutputRecord,
    *,
    names: Sequence[str] | None = None,
) -> list[str]:
    """Two survival tables of the same duration, event and groups that differ by fewer
    people than the threshold at a boundary both publish (the people at risk then, or the
    events up to then): the difference counts the few people between the two populations,
    as for count tables."""
    threshold = float(new.policy_parameters.get("threshold", {}).get("min_contributors", 0))
    mine = _survival_points(new)
    if threshold <= 0 or not mine:
        return []
    problems: list[str] = []
    for position, record in enumerate(records):
        if record.kind != "survival":
            continue
        label = names[position] if names is not None else f"survival table {position + 1}"
        for key, value in _survival_points(record).items():
            other = mine.get(key)
            if other is not None and 0 < abs(other - value) < threshold:
                _, group, quantity, time = key
                problems.append(
                    f"group {'/'.join(map(str, group)) or 'all'}, {quantity} {time:g}: "
                    f"{other:g} here, {value:g} in {label}; the difference isolates "
                    f"{abs(other - value):g} people (fewer than {threshold:g})"
                )
    return problems
