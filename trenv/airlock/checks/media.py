"""Figures without an output record and free text: what a machine can say about them.

A PNG or PDF that was not drawn by ``tre.save`` from checked counts can show anything, so a
checker must look at it; text is scanned for identifiers and for tables in disguise. Every
PNG (also one saved by ``tre.save``) is also reported on for what its re-encoding at intake
removed and for whether its pixels look like packed bytes (:mod:`trenv.judge.image`).
"""

from __future__ import annotations

import re

from trenv.airlock.checks.models import Finding, finding
from trenv.airlock.checks.notebook import looks_tabular
from trenv.airlock.checks.patterns import PSEUDONYM
from trenv.airlock.intake import FrozenFile
from trenv.judge.image import TEXT_CHUNKS, Chunk, ImageRefused, packed_bytes_score, png_chunk_list

# matplotlib writes these small metadata keys; anything else in a text chunk is unexplained,
# and so is a known key with a value longer than metadata ever is.
_KNOWN_KEYS = frozenset({"Software", "Creation Time", "Title", "Author", "Description"})
_KNOWN_MAX_BYTES = 1024
# Unexplained text this large is a payload, not a forgotten caption.
METADATA_FAIL_BYTES = 4096
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:[.,]\d+)?(?![\w.])")
_WORD = re.compile(r"\S+")
# Text with at least this many numbers, making up this share of its words, is reviewed.
NUMBERS_MIN = 50
NUMBERS_SHARE = 0.3


def check_figure(frozen: FrozenFile) -> list[Finding]:
    visual = finding(
        "figure-visual",
        "review",
        "This figure was not saved with tre.save from "
        "checked counts: a checker must look at what it shows.",
    )
    return [visual, *image_findings(frozen)]


def image_findings(frozen: FrozenFile) -> list[Finding]:
    """For a PNG: what its re-encoding removed, and whether its pixels are packed bytes."""
    if frozen.media_type != "image/png":
        return []
    return [*_chunk_findings(frozen), _packed_finding(frozen)]


def _unexplained_text(chunks: tuple[Chunk, ...] | list[Chunk]) -> list[Chunk]:
    return [
        c
        for c in chunks
        if c.type in TEXT_CHUNKS
        and (c.keyword not in _KNOWN_KEYS or len(c.payload) > _KNOWN_MAX_BYTES)
    ]


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} B"


def _chunk_findings(frozen: FrozenFile) -> list[Finding]:
    out: list[Finding] = []
    done = frozen.reencoded
    if done is not None:
        out.append(
            finding(
                "figure-reencoded",
                "pass",
                f"The PNG was re-encoded from its pixels at intake ({_kb(done.source_size)} "
                f"as read, sha256 {frozen.source_sha256[:12]}…; {_kb(frozen.size)} frozen): "
                f"{done.summary()}. The frozen copy is what checkers see and a release ships.",
            )
        )
        text = _unexplained_text(done.removed)
        said = "carried", "they were removed at intake and do not leave, but ask what they held."
    else:  # frozen before images were re-encoded: the chunks are still in the bytes
        try:
            text = _unexplained_text(png_chunk_list(frozen.data))
        except ImageRefused:
            text = []
        said = "carries", "they could hold data."
    if text:
        size = sum(len(c.payload) for c in text)
        out.append(
            finding(
                "figure-metadata",
                "review" if size < METADATA_FAIL_BYTES else "fail",
                f"The PNG {said[0]} {len(text)} text chunks ({size} bytes) that are not "
                f"drawing metadata; {said[1]}",
            )
        )
    return out


def _packed_finding(frozen: FrozenFile) -> Finding:
    try:
        verdict = packed_bytes_score(frozen.data)
    except ImageRefused as exc:
        return finding(
            "figure-packed",
            "fail",
            f"The pixels of the PNG could not be judged ({exc}): do not approve it unseen.",
        )
    if verdict.packed:
        return finding(
            "figure-packed",
            "fail",
            f"The pixels look like packed bytes, not a picture: {verdict.reason} "
            f"({verdict.figures()}). Approve only if you are sure what the figure shows and "
            "why its pixels look like data.",
        )
    return finding(
        "figure-packed",
        "pass",
        f"The pixels look like a picture, not packed bytes ({verdict.figures()}).",
    )


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
