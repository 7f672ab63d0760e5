"""Plain text and markdown: UTF-8 without NUL bytes, scanned for identifiers and for tables
in disguise.

A checker reads text like any other output, so the machine only points at what a reader
could miss: values that look like the TRE's pseudonyms, and text that is mostly numbers or
shaped like a table, which must be checked like a table.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from trenv.airlock.checks.models import FileCheck, Finding, finding, summarise
from trenv.airlock.checks.printed import looks_tabular
from trenv.errors import Invalid
from trenv.identifiers import PSEUDONYM

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w.])")
_WORD = re.compile(r"\S+")
# Text with at least this many numbers, making up this share of its words, is reviewed.
NUMBERS_MIN = 50
NUMBERS_SHARE = 0.3


def utf8_text(path: str, data: bytes, what: str) -> str:
    """``data`` as text, or :class:`Invalid` naming ``what`` it should have been."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(
            f"{path} is not UTF-8 text, so it is not a {what}.",
            f"save it as UTF-8 {what}",
        ) from None
    if "\x00" in text:
        raise Invalid(
            f"{path} contains NUL bytes, so it is not a {what}.",
            f"save it as a plain UTF-8 {what}",
        )
    return text


def validate(path: str, data: bytes) -> None:
    utf8_text(path, data, "text file")


def check(frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
    """The findings on a text or markdown file (no policy or record applies to prose)."""
    return summarise(frozen.kind, text_findings(frozen.data.decode("utf-8")), header_rows=0)


def text_findings(text: str) -> list[Finding]:
    out = []
    hits = PSEUDONYM.findall(text)
    if hits:
        out.append(
            finding(
                "pseudonyms",
                "fail",
                f"The text contains {len(hits)} values that look like the TRE's pseudonyms.",
            )
        )
    words = len(_WORD.findall(text))
    numbers = len(_NUMBER.findall(text))
    if numbers >= NUMBERS_MIN and numbers >= NUMBERS_SHARE * max(words, 1):
        out.append(
            finding(
                "numbers",
                "review",
                f"The text is mostly numbers ({numbers} of "
                f"{words} words): a checker must check them like a table.",
            )
        )
    elif looks_tabular(text) or _delimited(text):
        out.append(
            finding(
                "table-as-text",
                "review",
                "The text contains lines that look like "
                "a table: a checker must check them like one.",
            )
        )
    if not out:
        out.append(finding("text", "pass", "No identifiers or tables found in the text."))
    return out


def _delimited(text: str) -> bool:
    """Ten or more lines with the same number (two or more) of commas or tabs: a CSV."""
    counts: dict[tuple[str, int], int] = {}
    for line in text.splitlines():
        for sep in (",", "\t", ";"):
            n = line.count(sep)
            if n >= 2:
                counts[(sep, n)] = counts.get((sep, n), 0) + 1
    return max(counts.values(), default=0) >= 10
