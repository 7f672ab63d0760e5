"""What an identifier looks like: BSNs, the vault's pseudonyms and identifier column names.

One home for these shapes, so that the vault that writes pseudonyms, the ingest that
validates BSNs, the airlock that looks for them in outputs and the notebook server that
counts them in what it shows all agree. Only the standard library and numpy are imported:
the notebook container (``trenv.judge``, ``trenv.lab``) uses this module too.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

# --- BSN: the Dutch citizen service number and its 11-test ----------------------------------

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


def looks_like_bsn(value: str) -> bool:
    """A cell value that is a BSN as written: eight or nine digits, no separators, passing
    the 11-test."""
    digits = value.strip()
    return len(digits) in (8, 9) and digits.isdigit() and is_valid_bsn(digits)


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


# --- the vault's pseudonyms -----------------------------------------------------------------

# Pseudonyms are the first 128 bits of an HMAC as lowercase hex (trenv.vault.pseudonym):
# collisions are negligible even for tens of millions of people, and files stay half the
# size of full digests.
PSEUDONYM_HEX_CHARS = 32
# A pseudonym standing on its own; longer hex strings (sha256 digests of files, for
# example) are not pseudonyms.
PSEUDONYM = re.compile(rf"(?<![0-9A-Za-z])[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}(?![0-9A-Za-z])")


# --- identifier column names ----------------------------------------------------------------

# In a released table: a column that names people or their records, even pseudonymously.
_IDENTIFIER_NAME = re.compile(
    r"^(?:.*[_\s-])?(?:id|ids|pid|bsn|pseudonym|pseudoniem|pseudo|person|persoon|"
    r"person_?id|persoon_?id|client_?id|subject_?id|patient_?id|case_?id|dossier|"
    r"dossiernummer|parketnummer|v_?nummer|anr|rinummer|ssn|nin|uuid|guid|"
    r"name|naam|surname|achternaam|voornaam|birth_?date|geboortedatum|address|adres)$",
    re.IGNORECASE,
)
# In a supplier's schema: "id", "case_id", "case id", "CASE_ID", and camel case "caseId" /
# "CaseID" (but not "paid").
_ID_SUFFIX = re.compile(r"(?:^|[_\s.-])id$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9]I[dD]$")


def is_identifier_name(name: str) -> bool:
    """A column of a released table that identifies people or records by its name: such as
    pseudonym, person_id, pid, bsn, a name or address, or anything ending in ``_id``.

    A released table must never carry an identifier of a person, even a pseudonymous one:
    the vault's pseudonyms are project-specific but still single out one person in every
    output of the project.
    """
    cleaned = name.strip()
    return bool(cleaned) and (
        bool(_IDENTIFIER_NAME.match(cleaned)) or cleaned.lower().endswith("_id")
    )


def looks_like_id(name: str) -> bool:
    """A column of a supplier's extract whose name ends in "id": its schema must declare
    whether it is a record key, a person key or neither (``key:``)."""
    return bool(_ID_SUFFIX.search(name) or _CAMEL_ID.search(name))
