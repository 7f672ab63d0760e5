"""Normalisation of values before they are pseudonymised, generalised or compared.

Linkage compares what suppliers wrote in different ways ("Öztürk" / "ozturk", "1234 ab" /
"1234AB"); normalising first makes those equal, so only real differences are left to Splink.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from trenv.vault.schema import Column, ColumnType
from trenv.vault.validate import normalise_bsn_array, parse_boolean, parse_date


def typed(values: pa.Array, column: Column) -> pa.Array:
    """Convert validated strings to the column's declared type."""
    kind = column.type
    if kind is ColumnType.integer:
        return pc.cast(pc.utf8_trim_whitespace(values), pa.int64())
    if kind is ColumnType.float:
        return pc.cast(pc.utf8_trim_whitespace(values), pa.float64())
    if kind is ColumnType.date:
        return parse_date(values)
    if kind is ColumnType.boolean:
        return pc.if_else(pc.is_null(values), pa.scalar(None, pa.bool_()), parse_boolean(values))
    if kind is ColumnType.bsn:
        return normalise_bsn_array(values)
    return pc.utf8_trim_whitespace(values)


def name_key(values: pa.Array) -> pa.Array:
    """Lower case, no accents, hyphens and repeated spaces folded: 'Öztürk-De  Vries' ->
    'ozturk de vries'."""
    text = pc.utf8_normalize(values, form="NFKD")
    text = pc.replace_substring_regex(text, r"\p{Mn}", "")
    text = pc.utf8_lower(text)
    text = pc.replace_substring_regex(text, r"[^a-z0-9' ]+", " ")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    return pc.utf8_trim_whitespace(text)


def postcode_key(values: pa.Array) -> pa.Array:
    return pc.utf8_upper(pc.replace_substring_regex(values, r"\s+", ""))


def linkage_value(values: pa.Array, field: str) -> pa.Array:
    """A linkage field in the form the comparisons expect (strings; dates ISO)."""
    if field in ("first_name", "surname", "municipality"):
        return name_key(values)
    if field == "postcode":
        return postcode_key(values)
    if field == "birth_date":
        return pc.cast(values, pa.string())
    if field == "house_number":
        return pc.cast(values, pa.string())
    return pc.utf8_lower(pc.cast(values, pa.string()))


def generalise(values: pa.Array, how: str) -> pa.Array:
    """Coarsen a quasi-identifier: date -> year (int) or 'YYYY-MM'; postcode -> 4 digits."""
    if how == "year":
        return pc.cast(pc.year(values), pa.int32())
    if how == "month":
        return pc.strftime(pc.cast(values, pa.timestamp("s")), format="%Y-%m")
    if how == "postcode4":
        return pc.utf8_slice_codeunits(postcode_key(values), 0, 4)
    raise ValueError(f"unknown generalisation {how!r}")
