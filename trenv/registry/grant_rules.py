"""A grant's column rules: columns to drop and columns to coarsen in the project's view.

A grant may name, for its dataset, columns the project does not see (``drop``) and columns it
sees only coarsened (``coarsen``): a date to its month (``YYYY-MM``) or year, a number to a
band between fixed edges. Stored on the grant as JSON, for example::

    {"drop": ["fine_eur"],
     "coarsen": {"judgment_date": {"date": "month"}, "prison_days": {"bands": [30, 180, 365]}}}

The rules are checked against the dataset's codebook when the grant is proposed and against
the data file when it is published (``trenv.vault.publish``); either refuses a rule that names
an unknown column or a coarsening that does not fit the column's type, and nothing is granted
or published. Pure: no database, no data files (the registry stays light to import).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
)

from trenv.errors import Invalid

DATE_GRAINS = ("month", "year")
MAX_BANDS = 100
# Codebook types each coarsening fits (a generalised birth year is an integer: bands fit it).
DATE_TYPES = frozenset({"date"})
NUMBER_TYPES = frozenset({"integer", "float"})
FORMAT_HELP = (
    "Write COLUMN=month, COLUMN=year (a date column) or COLUMN=bands:E1,E2,... (a number "
    "column; increasing edges, e.g. fine_eur=bands:0,100,500)."
)


class DateCoarsening(BaseModel):
    """A date published as its month (``'YYYY-MM'``, a string) or its year (an integer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: Literal["month", "year"]

    def describe(self) -> str:
        return self.date


class BandCoarsening(BaseModel):
    """A number published as the band it falls in: ``(-inf, e1)``, ``[e1, e2)``, ...,
    ``[en, inf)`` for the edges ``e1 < e2 < ... < en``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: list[StrictInt | StrictFloat] = Field(min_length=1, max_length=MAX_BANDS - 1)

    @field_validator("bands")
    @classmethod
    def _increasing(cls, edges: list[int | float]) -> list[int | float]:
        if not all(math.isfinite(e) for e in edges):
            raise ValueError("band edges must be finite numbers")
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("band edges must be strictly increasing")
        return edges

    def describe(self) -> str:
        return "bands " + ",".join(edge_text(e) for e in self.bands)


Coarsening = DateCoarsening | BandCoarsening


class ColumnRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    drop: list[str] = Field(default_factory=list)
    coarsen: dict[str, DateCoarsening | BandCoarsening] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.drop and not self.coarsen

    def as_json(self) -> dict[str, Any] | None:
        """What the grant stores: None for no rules."""
        if self.empty:
            return None
        return self.model_dump(mode="json", exclude_defaults=True)

    def describe(self) -> str:
        """One line for listings: ``drop fine_eur; judgment_date: month``."""
        parts = [f"drop {', '.join(self.drop)}"] if self.drop else []
        parts += [f"{c}: {rule.describe()}" for c, rule in self.coarsen.items()]
        return "; ".join(parts)


def edge_text(edge: float) -> str:
    """A band edge as written: 100 not 100.0."""
    return str(int(edge)) if float(edge).is_integer() and abs(edge) < 1e15 else repr(float(edge))


def band_labels(edges: Sequence[float]) -> list[str]:
    """The labels of the bands between ``edges``, lowest first."""
    text = [edge_text(e) for e in edges]
    bounds = ["-inf", *text, "inf"]
    return [
        f"{'(' if i == 0 else '['}{bounds[i]}, {bounds[i + 1]})" for i in range(len(bounds) - 1)
    ]


def parse_rules(raw: Mapping[str, Any] | ColumnRules | None) -> ColumnRules:
    """Rules from their stored JSON (``None`` = no rules); malformed rules are refused."""
    if raw is None:
        return ColumnRules()
    if isinstance(raw, ColumnRules):
        return raw
    try:
        return ColumnRules.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(rules)'}: {e['msg']}" for e in error.errors()
        )
        raise Invalid(f"the grant's column rules are malformed ({details}).", FORMAT_HELP) from None


def rules_from_text(drop: str | Iterable[str] | None, coarsen: Iterable[str] | None) -> ColumnRules:
    """Rules as typed on the command line or a form: ``--drop a,b`` and repeated
    ``--coarsen COLUMN=month|year|bands:E1,E2,...`` (one per line or comma-free entry)."""
    if isinstance(drop, str):
        drop = drop.split(",")
    dropped = [c.strip() for c in drop or [] if c.strip()]
    rules: dict[str, dict[str, Any]] = {}
    for entry in coarsen or []:
        entry = entry.strip()
        if not entry:
            continue
        column, sep, how = (part.strip() for part in entry.partition("="))
        if not sep or not column or not how:
            raise Invalid(f"cannot read the coarsening {entry!r}.", FORMAT_HELP)
        if column in rules:
            raise Invalid(f"column {column!r} is coarsened twice.", "Give one rule per column.")
        if how in DATE_GRAINS:
            rules[column] = {"date": how}
        elif how.startswith("bands:"):
            rules[column] = {"bands": [_number(e, entry) for e in how[6:].split(",")]}
        else:
            raise Invalid(f"unknown coarsening {how!r} for column {column!r}.", FORMAT_HELP)
    return parse_rules({"drop": dropped, "coarsen": rules})


def _number(text: str, entry: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise Invalid(f"band edge {text!r} in {entry!r} is not a number.", FORMAT_HELP) from None


def check_rules(
    rules: ColumnRules,
    codebook: Mapping[str, Any] | Sequence[str],
    granted: Sequence[str] | None,
    reference: str,
) -> ColumnRules:
    """Refuse rules that do not fit the dataset: unknown columns, columns outside the granted
    ones, a coarsening of a column whose codebook type it does not fit, nothing left.

    ``codebook`` maps column -> codebook entry (or is a bare list of names, which allows drops
    only); ``granted`` is the grant's column subset (None: every column).
    """
    if rules.empty:
        return rules
    entries: Mapping[str, Any] = (
        codebook if isinstance(codebook, Mapping) else {name: {} for name in codebook}
    )
    known = list(entries)
    named = [*rules.drop, *rules.coarsen]
    unknown = [c for c in dict.fromkeys(named) if c not in entries]
    if unknown:
        raise Invalid(
            f"the grant's column rules name column(s) {', '.join(unknown)}, which dataset "
            f"{reference} does not have.",
            f"Its columns are: {', '.join(known)}.",
        )
    shown = [c for c in known if granted is None or c in granted]
    outside = [c for c in dict.fromkeys(named) if c not in shown]
    if outside:
        raise Invalid(
            f"the grant's column rules name column(s) {', '.join(outside)} of {reference}, "
            "which the grant does not include.",
            "Name only granted columns in --drop and --coarsen (or add them to --columns).",
        )
    both = [c for c in rules.coarsen if c in rules.drop]
    if both:
        raise Invalid(
            f"column(s) {', '.join(both)} of {reference} are both dropped and coarsened.",
            "Either drop a column or coarsen it.",
        )
    for column, rule in rules.coarsen.items():
        entry = entries[column] if isinstance(entries[column], Mapping) else {}
        kind = entry.get("type")
        if entry.get("key") in ("record", "person") or kind == "pseudonym":
            raise Invalid(
                f"cannot coarsen column {column} of {reference}: it is an identifier, re-keyed "
                "for each project.",
                "Drop it instead if the project must not see it.",
            )
        fits = DATE_TYPES if isinstance(rule, DateCoarsening) else NUMBER_TYPES
        if kind not in fits:
            what = (
                f"{rule.date} needs a date column"
                if isinstance(rule, DateCoarsening)
                else "bands need an integer or float column"
            )
            raise Invalid(
                f"cannot coarsen column {column} of {reference} ({what}; its codebook type is "
                f"{kind or 'not given'}).",
                "Coarsen dates to month or year and numbers to bands; drop other columns instead.",
            )
    if not [c for c in shown if c not in rules.drop]:
        raise Invalid(
            f"the grant's rules drop every granted column of {reference}.",
            "Drop fewer columns: a grant must leave at least one.",
        )
    return rules
