"""What identifiers look like: column names, the vault's pseudonyms, BSNs.

A released table must never carry an identifier of a person, even a pseudonymous one: the
vault's pseudonyms are project-specific but still single out one person in every output of
the project.
"""

from __future__ import annotations

import re

from trenv.vault.bsn import is_valid_bsn
from trenv.vault.pseudonym import PSEUDONYM_HEX_CHARS

# The vault writes pseudonyms as the first PSEUDONYM_HEX_CHARS lowercase hex digits of an
# HMAC; longer hex strings (sha256 digests of files, for example) are not pseudonyms.
PSEUDONYM = re.compile(rf"(?<![0-9A-Za-z])[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}(?![0-9A-Za-z])")

_ID_NAME = re.compile(
    r"^(?:.*[_\s-])?(?:id|ids|pid|bsn|pseudonym|pseudoniem|pseudo|person|persoon|"
    r"person_?id|persoon_?id|client_?id|subject_?id|patient_?id|case_?id|dossier|"
    r"dossiernummer|parketnummer|v_?nummer|anr|rinummer|ssn|nin|uuid|guid|"
    r"name|naam|surname|achternaam|voornaam|birth_?date|geboortedatum|address|adres)$",
    re.IGNORECASE,
)


def is_identifier_name(name: str) -> bool:
    """Column names such as pseudonym, person_id, pid, bsn or anything ending in ``_id``."""
    cleaned = name.strip()
    return bool(cleaned) and (bool(_ID_NAME.match(cleaned)) or cleaned.lower().endswith("_id"))


def has_pseudonym(text: str) -> bool:
    return PSEUDONYM.search(text) is not None


def looks_like_bsn(value: str) -> bool:
    digits = value.strip()
    return len(digits) in (8, 9) and digits.isdigit() and is_valid_bsn(digits)
