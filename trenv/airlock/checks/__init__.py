"""Server-side rules for frozen request files; results are never taken from the client.

These rules hold for tables whatever their format: small counts and identifiers
(:mod:`.tabular`, :mod:`.counts`), totals that give suppressed cells away (:mod:`.margins`),
cells a spreadsheet program would run (:mod:`.formulas`), tables and figures saved with
``tre.save`` (:mod:`.saved`), DP outputs (:mod:`.dp`), printed tables (:mod:`.printed`) and
figures that only a person can judge (:mod:`.figures`). Which rules a file gets, and what is
particular to its format, is in :mod:`trenv.airlock.formats`, whose ``check_file`` checks
one frozen file.
"""

from __future__ import annotations

from trenv.airlock.checks.models import DPLedgerEntry, FileCheck, Finding, worst

__all__ = ["DPLedgerEntry", "FileCheck", "Finding", "worst"]
