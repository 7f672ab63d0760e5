"""Figures that were not drawn by ``tre.save`` from checked counts: only a person can judge
what they show.

A PNG or PDF made any other way can show anything (a scatter of individual records, a
table drawn as an image), so every such figure is reviewed whatever its format; what a
machine can add for a PNG is in :mod:`trenv.airlock.formats.png`.
"""

from __future__ import annotations

from trenv.airlock.checks.models import Finding, finding


def unchecked_figure() -> Finding:
    return finding(
        "figure-visual",
        "review",
        "This figure was not saved with tre.save from "
        "checked counts: a checker must look at what it shows.",
    )
