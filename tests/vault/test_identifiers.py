"""What an identifier looks like (trenv.identifiers): BSNs, pseudonyms, identifier names."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trenv.identifiers import (
    PSEUDONYM,
    PSEUDONYM_HEX_CHARS,
    is_identifier_name,
    is_valid_bsn,
    looks_like_bsn,
    make_bsns,
    normalise_bsn,
    valid_bsn_mask,
)
from trenv.judge import text as judge_text
from trenv.vault.pseudonym import Pseudonymiser


def test_known_numbers() -> None:
    assert is_valid_bsn("111222333")
    assert is_valid_bsn("123456782")
    assert not is_valid_bsn("123456789")
    assert not is_valid_bsn("000000000")
    assert not is_valid_bsn("12345678a")
    assert not is_valid_bsn("1234567821")


def test_normalisation_restores_leading_zero_and_strips_separators() -> None:
    assert normalise_bsn(" 1234.56.782 ") == "123456782"
    assert normalise_bsn("12345672") == "012345672"
    assert is_valid_bsn("12345672") == is_valid_bsn("012345672")


@given(st.lists(st.integers(min_value=0, max_value=999_999_999), min_size=1, max_size=50))
def test_vectorised_test_agrees_with_scalar(numbers: list[int]) -> None:
    mask = valid_bsn_mask(np.array(numbers, dtype=np.int64))
    assert mask.tolist() == [is_valid_bsn(f"{n:09d}") for n in numbers]


def test_make_bsns_gives_valid_numbers_or_minus_one() -> None:
    prefixes = np.arange(10_000_000, 10_010_000, dtype=np.int64)
    bsns = make_bsns(prefixes)
    made = bsns[bsns > 0]
    assert valid_bsn_mask(made).all()
    # A prefix whose remainder is 10 has no check digit; roughly one in eleven.
    assert 0.05 < (bsns < 0).mean() < 0.15


def test_the_module_needs_only_the_standard_library_and_numpy() -> None:
    """The notebook container imports it too (trenv.judge.text): no store, no pandas."""
    code = (
        "import sys, trenv.identifiers; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('trenv', 'sqlalchemy', 'pandas', 'pyarrow', 'pydantic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['trenv', 'trenv.identifiers']"


def test_pseudonym_shape_is_what_the_vault_writes() -> None:
    pseudonym = Pseudonymiser(bytes(range(32))).pseudonym("123456782")
    assert len(pseudonym) == PSEUDONYM_HEX_CHARS
    assert PSEUDONYM.fullmatch(pseudonym)
    assert PSEUDONYM.findall(f"id {pseudonym}, next") == [pseudonym]
    # Longer hex (a sha256), upper case and hex inside a word are not pseudonyms.
    assert not PSEUDONYM.search("a" * 64)
    assert not PSEUDONYM.search("ABCDEF0123456789" * 2)
    assert not PSEUDONYM.search(f"x{pseudonym}")


def test_judge_and_airlock_use_the_one_pseudonym_pattern() -> None:
    assert judge_text.PSEUDONYM is PSEUDONYM
    assert judge_text.measure(f"{'0' * 32} and {'f' * 32}").pseudonyms == 2


def test_looks_like_bsn_takes_cell_values_as_written() -> None:
    assert looks_like_bsn("123456782") and looks_like_bsn(" 12345672 ")
    assert not looks_like_bsn("1234.56.782")  # separators: not a bare BSN cell
    assert not looks_like_bsn("123456789") and not looks_like_bsn("1234567")


def test_identifier_names_in_released_tables() -> None:
    for name in ("pseudonym", "person_id", "PID", "bsn", "client id", "officer_id", "Naam"):
        assert is_identifier_name(name), name
    for name in ("", "  ", "region", "n", "paid", "offence"):
        assert not is_identifier_name(name), name
