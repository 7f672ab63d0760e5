from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trenv.vault.bsn import is_valid_bsn, make_bsns, normalise_bsn, valid_bsn_mask


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
