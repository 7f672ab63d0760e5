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


Definition = frozenset[tuple[str, str]]
COUNT = "count"


def _definitions(record: OutputRecord) -> dict[Definition, int]:
    """Each cell's definition as {variable: label} over the variables it fixes, so that the
    same group of people has the same key in every table: the row total of region x offence
    is the cell of a one-way table by region, and every grand total is the empty key.
    Margins fix none of their axis' variables; a subtotal row fixes its first ``level``."""
    cells = record.cells
    out: dict[Definition, int] = {}
    for i in range(len(cells)):
        fixed: list[tuple[str, str]] = []
        for names, labels, margin, levels in (
            (record.index, cells.row[i], cells.row_margin[i], cells.row_level),
            (record.columns, cells.column[i], cells.column_margin[i], cells.column_level),
        ):
            if margin:
                continue
            depth = len(names) if levels is None else levels[i]
            fixed += list(zip(names[:depth], labels[:depth], strict=False))
        out.setdefault(frozenset(fixed), i)
    return out


def _comparable(a: OutputRecord, b: OutputRecord) -> bool:
    """Tables whose cells, cell by cell, are statistics of the same variable: two counts, or
    two magnitudes of one values column (a sum and a mean of months over populations one
    person apart give that person's months away as well as two sums do)."""
    if a.kind != "table" or b.kind != "table" or a.cells.statistic or b.cells.statistic:
        return False
    if (a.statistic == COUNT) != (b.statistic == COUNT):
        return False
    return a.statistic == COUNT or a.values == b.values


def _label(record: OutputRecord, i: int) -> str:
    cells = record.cells
    return f"{'/'.join(map(str, cells.row[i]))} x {'/'.join(map(str, cells.column[i])) or '-'}"


def near_populations(
    records: Sequence[OutputRecord],
    new: OutputRecord,
    *,
    names: Sequence[str] | None = None,
) -> list[str]:
    """Cells of ``new`` that describe nearly the same people as a published cell of an
    earlier table: a few people (or a few rows of the same people) apart.

    Two tables of *slightly* different populations (all offenders, then all but one) are the
    classic differencing attack: the linear programme cannot see it, because their totals
    simply contradict; but the difference of two counts is a count of the few people left
    out, the difference of two sums is the sum of their values, and two means or medians a
    person apart bound that person's value. So every pair of published cells with the same
    definition (``_definitions``) in comparable tables is compared: a difference of 1 up to
    the threshold - 1 in the people (contributors) or the rows the two cells were computed
    from is flagged, whatever the statistic. For rounded counts the published difference
    is what an intruder sees, so that is what is compared. ``names[i]`` names
    ``records[i]`` in the messages (default: "table i+1"). Survival tables are compared
    with earlier survival tables (``near_survival``)."""
    if new.kind == "survival":
        return near_survival(records, new, names=names)
    if new.kind != "table" or new.cells.statistic is not None:
        return []
    threshold = float(new.policy_parameters.get("threshold", {}).get("min_contributors", 0))
    if threshold <= 0:
        return []
    mine = _definitions(new)
    cells = new.cells
    problems: list[str] = []
    for position, record in enumerate(records):
        if not _comparable(record, new):
            continue
        label = names[position] if names is not None else f"table {position + 1}"
        theirs = record.cells
        for key, j in _definitions(record).items():
            i = mine.get(key)
            if i is None or cells.published[i] is None or theirs.published[j] is None:
                continue
            problem = _near(new, i, record, j, threshold, label)
            if problem:
                problems.append(problem)
    return problems


def _near(
    new: OutputRecord, i: int, old: OutputRecord, j: int, threshold: float, label: str
) -> str | None:
    """Why cell ``i`` of ``new`` and cell ``j`` of ``old`` together isolate a few people."""
    a, b = new.cells, old.cells
    here, there = float(a.published[i] or 0.0), float(b.published[j] or 0.0)
    where = _label(new, i)
    if new.statistic == COUNT:
        rounded = new.rounding != "none" or old.rounding != "none"
        # A rounded count stands for a band: the published difference is what is known.
        apart = abs(here - there) if rounded else abs(a.rows[i] - b.rows[j])
        if 0 < apart < threshold:
            return (
                f"{where}: {here:g} here, {there:g} in {label}; the difference "
                f"isolates {apart:g} people (fewer than {threshold:g})"
            )
        return None
    people = abs(a.contributors[i] - b.contributors[j])
    rows = abs(a.rows[i] - b.rows[j])
    what = f"the {new.statistic} of {new.values}"
    if 0 < people < threshold:
        return (
            f"{where}: {what} here and the {old.statistic} in {label} are over populations "
            f"{people} people apart; the difference isolates {people} people (fewer than "
            f"{threshold:g}) and gives their {new.values} away"
        )
    if people == 0 and 0 < rows < threshold:
        return (
            f"{where}: {what} here and the {old.statistic} in {label} are over the same "
            f"people but {rows} rows apart; the difference gives the {new.values} of those "
            "rows away"
        )
    return None


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
