"""Shape checks for names that end up in URLs, container names and file paths."""

from __future__ import annotations

import datetime as dt
import re

from trenv.errors import Invalid

SLUG = re.compile(r"^[a-z][a-z0-9-]{0,62}[a-z0-9]$")
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{0,62}[a-z0-9]$|^[a-z]$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_slug(value: str, what: str) -> str:
    if not SLUG.fullmatch(value):
        raise Invalid(
            f"{what} {value!r} is not a valid slug.",
            "Use 2-64 lowercase letters, digits and hyphens, starting with a letter "
            "(e.g. 'reoffending-2026').",
        )
    return value


def check_username(value: str) -> str:
    if not USERNAME.fullmatch(value):
        raise Invalid(
            f"user name {value!r} is not valid.",
            "Use lowercase letters, digits, '.', '_' or '-', starting with a letter, "
            "at most 64 characters.",
        )
    return value


def check_version(value: str) -> str:
    if not VERSION.fullmatch(value):
        raise Invalid(
            f"dataset version {value!r} is not valid.",
            "Use letters, digits, '.', '_' or '-' (e.g. '2026-10' or '1.2').",
        )
    return value


def parse_date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{what} {value!r} is not a date.", "Write it as YYYY-MM-DD.") from None
