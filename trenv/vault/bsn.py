"""The Dutch citizen service number (BSN) and its 11-test, scalar and vectorised."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# Weights of the 11-test: digits 1..8 weigh 9..2, the check digit weighs -1.
WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2, -1], dtype=np.int64)


def normalise_bsn(value: str) -> str:
    """Strip the separators suppliers use (spaces, dots, dashes) and restore leading zeros.

    Eight-digit BSNs exist because spreadsheets drop the leading zero; padding them back keeps
    the pseudonym of one person identical across suppliers.
    """
    digits = "".join(ch for ch in value.strip() if ch not in " .-")
    return digits.zfill(9) if digits.isdigit() and len(digits) == 8 else digits


def is_valid_bsn(value: str) -> bool:
    """True when ``value`` is nine digits (after normalisation) that pass the 11-test."""
    digits = normalise_bsn(value)
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    return sum(int(d) * w for d, w in zip(digits, WEIGHTS.tolist(), strict=True)) % 11 == 0


def valid_bsn_mask(numbers: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Vectorised 11-test over BSNs given as integers (0 <= n < 10**9)."""
    n = np.asarray(numbers, dtype=np.int64)
    total = np.zeros(n.shape, dtype=np.int64)
    rest = n.copy()
    # Walk from the check digit (weight -1) up to the first digit (weight 9).
    for weight in WEIGHTS[::-1]:
        total += (rest % 10) * weight
        rest //= 10
    return (total % 11 == 0) & (n > 0) & (n < 1_000_000_000)


def make_bsns(prefixes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Append the check digit to eight-digit prefixes; -1 where no digit makes the number valid.

    With digits d1..d8 and S = sum(w_i * d_i), the check digit is S mod 11; a remainder of 10
    cannot be written as one digit, so that prefix has no valid BSN.
    """
    p = np.asarray(prefixes, dtype=np.int64)
    total = np.zeros(p.shape, dtype=np.int64)
    rest = p.copy()
    for weight in WEIGHTS[-2::-1]:
        total += (rest % 10) * weight
        rest //= 10
    check = total % 11
    return np.where(check < 10, p * 10 + check, -1)
