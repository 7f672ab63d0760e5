"""PDF figures: refused at intake if they can run code, open other files or carry
attachments; every PDF figure is then looked at by a checker.

Names in a PDF may be written with ``#xx`` escapes (``/J#61vaScript``) and dictionaries may
sit inside compressed object streams, so both are decoded before the names are compared.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from trenv.airlock.checks.figures import unchecked_figure
from trenv.airlock.checks.models import FileCheck, summarise
from trenv.errors import Invalid

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

# PDF features that run code, open other files or carry attachments.
_PDF_FORBIDDEN = {
    b"/JavaScript": "JavaScript",
    b"/JS": "JavaScript",
    b"/EmbeddedFile": "embedded files",
    b"/EmbeddedFiles": "embedded files",
    b"/Launch": "an action that launches programs",
    b"/RichMedia": "embedded media",
    b"/XFA": "an XFA form",
    b"/Encrypt": "encryption (its content cannot be checked)",
}
_PDF_NAME = re.compile(rb"/[^\s/<>\[\]()%{}]+")
_PDF_STREAM = re.compile(rb"stream\r?\n")
_PDF_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_MAX_INFLATE = 64 * 1024 * 1024


def _pdf_names(blob: bytes) -> set[bytes]:
    # Names may be written with #xx escapes (/J#61vaScript); decode them before comparing.
    return {
        _PDF_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), n) for n in _PDF_NAME.findall(blob)
    }


def _pdf_streams(data: bytes) -> Iterator[bytes]:
    """Inflated content of the Flate streams: object streams can hide dictionaries."""
    budget = _PDF_MAX_INFLATE
    for m in _PDF_STREAM.finditer(data):
        end = data.find(b"endstream", m.end())
        if end < 0:
            break
        raw = data[m.end() : end]
        try:
            inflated = zlib.decompressobj().decompress(raw, budget)
        except zlib.error:
            continue
        budget -= len(inflated)
        yield inflated
        if budget <= 0:
            return


def pdf_problems(data: bytes) -> list[str]:
    """What in a PDF makes it unsafe to release (empty if nothing)."""
    names = _pdf_names(data)
    for inflated in _pdf_streams(data):
        names |= _pdf_names(inflated)
    return sorted({why for key, why in _PDF_FORBIDDEN.items() if key in names})


def validate(path: str, data: bytes) -> None:
    if not data.startswith(b"%PDF-"):
        raise Invalid(
            f"{path} is named .pdf but its content is not a PDF document.",
            "save the figure as PDF (fig.savefig('name.pdf')) or use the right extension",
        )
    problems = pdf_problems(data)
    if problems:
        raise Invalid(
            f"{path} contains {', '.join(problems)}, which cannot leave the TRE.",
            "export the figure as PNG, or save the PDF again without scripts or attachments",
        )


def check(frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
    """A PDF figure is always reviewed: ``tre.save`` draws PNGs, so an output record next
    to a PDF does not describe it."""
    return summarise("figure", [unchecked_figure()], header_rows=0)
