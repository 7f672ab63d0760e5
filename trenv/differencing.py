"""Differencing across a project's tables when they are not all about the same data.

``trenv.disclosure.differencing.Ledger`` treats every comparable count or sum table as a
fact about one population. A project's tables are often about different ones (a follow-up
cohort, a subset of seizures): their totals contradict each other and the combined linear
programme is infeasible, which the engine reports as ``ValueError("published facts are
inconsistent")``. Tables that contradict each other cannot describe the same people, so
combining them tells an attacker nothing; the new table is then checked against the
largest group of earlier tables (newest first) that is consistent with it.

Used by the notebook (``trenv.lab.ledger``) and the airlock (``trenv.airlock.service``), so
both see the same verdict. Depends on ``trenv.disclosure`` only.
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
