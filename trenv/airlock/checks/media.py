"""Figures without an output record and free text: what a machine can say about them.

A PNG or PDF that was not drawn by ``tre.save`` from checked counts can show anything, so a
checker must look at it; text is scanned for identifiers and for tables in disguise.
"""

from __future__ import annotations

import re

from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.notebook import looks_tabular
from trenv.airlock.checks.patterns import PSEUDONYM
from trenv.airlock.intake import FrozenFile, png_chunks

_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
# matplotlib writes these small metadata keys; anything else in a text chunk is unexplained.
_KNOWN_KEYS = (b"Software", b"Creation Time", b"Title", b"Author", b"Description")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w.])")
_WORD = re.compile(r"\S+")
# Text with at least this many numbers, making up this share of its words, is reviewed.
NUMBERS_MIN = 50
NUMBERS_SHARE = 0.3


def check_figure(frozen: FrozenFile) -> list[Finding]:
    out = [
        finding(
            "figure-visual",
            "review",
            "This figure was not saved with tre.save from "
            "checked counts: a checker must look at what it shows.",
        )
    ]
    if frozen.media_type == "image/png":
        extra = [
            (t, len(p))
            for t, p in png_chunks(frozen.data)
            if t in _TEXT_CHUNKS and not p.startswith(_KNOWN_KEYS)
        ]
        size = sum(n for _, n in extra)
        if extra:
            out.append(
                finding(
                    "figure-metadata",
                    "review" if size < 4096 else "fail",
                    f"The PNG carries {len(extra)} text chunks ({size} bytes) that "
                    "are not drawing metadata; they could hold data.",
                )
            )
    return out


def check_text(frozen: FrozenFile) -> list[Finding]:
    text = frozen.data.decode("utf-8")
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
