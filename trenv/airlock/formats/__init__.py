"""The file formats that may leave the TRE, one module each, found by the file's suffix.

A format module holds what the airlock knows about that format: ``validate(path, data)``
refuses, at intake, bytes that do not match their extension or that carry hidden or active
content (macros, embedded files, JavaScript, data files in notebook outputs), with a reason
the researcher can act on; ``check(frozen, policy=..., record=...)`` gives the server's
findings on the frozen bytes. Rules that hold for tables of any format (small counts,
identifiers, margins, formulas, ``tre.save`` records, DP outputs) are in
:mod:`trenv.airlock.checks` and used from here.

:data:`ALLOWED_TYPES` is the allow-list: a file whose suffix is not in it cannot leave.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from trenv.airlock.checks.dp import check_dp
from trenv.airlock.checks.models import DPLedgerEntry, FileCheck, finding, summarise
from trenv.airlock.formats import csv, notebook, pdf, png, text, xlsx
from trenv.judge.image import ReencodedImage

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile


class FormatRules(Protocol):
    """What a format module provides."""

    def validate(self, path: str, data: bytes) -> None:
        """Refuse (:class:`~trenv.errors.Invalid`) bytes that may not leave as this format."""
        ...

    def check(self, frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
        """The findings on a frozen file; ``record`` is the ``tre.save`` record next to it."""
        ...


@dataclass(frozen=True)
class FileType:
    kind: str  # "table" | "spreadsheet" | "figure" | "document" | "text" | "notebook"
    media_type: str
    rules: FormatRules
    # Formats frozen as a fresh encoding of their content rather than the bytes as read:
    # images, so that nothing invisible in them is stored, shown or released.
    reencode: Callable[[str, bytes, int], ReencodedImage] | None = None


ALLOWED_TYPES: dict[str, FileType] = {
    ".csv": FileType("table", "text/csv", csv),
    ".xlsx": FileType(
        "spreadsheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsx
    ),
    ".png": FileType("figure", "image/png", png, reencode=png.reencode),
    ".pdf": FileType("figure", "application/pdf", pdf),
    ".txt": FileType("text", "text/plain", text),
    ".md": FileType("document", "text/markdown", text),
    ".ipynb": FileType("notebook", "application/x-ipynb+json", notebook),
}


def suffix(path: str) -> str:
    """The lower-case extension that :data:`ALLOWED_TYPES` is keyed by (``""`` if none)."""
    return os.path.splitext(path.lower())[1]


def validate_content(path: str, data: bytes) -> None:
    """Refuse bytes that do not match their extension or carry hidden or active content;
    ``path`` has an allowed suffix (see ``trenv.airlock.intake.file_type``)."""
    ALLOWED_TYPES[suffix(path)].rules.validate(path, data)


def _no_ledger(_spend_id: int) -> DPLedgerEntry | None:
    return None


def check_file(
    frozen: FrozenFile,
    *,
    project: str,
    policy: str,
    record: bytes | None = None,
    dp_output: bytes | None = None,
    dp_lookup: Callable[[int], DPLedgerEntry | None] = _no_ledger,
) -> FileCheck:
    """Check one frozen file under the project's ``policy``: a DP output against the
    server's ledger, anything else by its format's rules. ``record`` and ``dp_output`` are
    the sidecars read next to the file (untrusted descriptions to verify). A file's status
    is its worst finding; results are never taken from the client."""
    if dp_output is not None:
        return summarise(
            "dp-output", check_dp(frozen, dp_output, project=project, dp_lookup=dp_lookup)
        )
    ftype = ALLOWED_TYPES.get(suffix(frozen.path))
    if ftype is None:
        return summarise(
            frozen.kind,
            [finding("kind", "fail", f"Files of kind {frozen.kind!r} cannot be checked.")],
            header_rows=0,
        )
    return ftype.rules.check(frozen, policy=policy, record=record)
