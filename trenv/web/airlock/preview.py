"""Previews of a request's frozen files for the request page, built from the stored bytes.

Tables come as data (header, rows, flagged cells with their reasons) so the template
renders and escapes them itself; notebooks and text come as HTML that
:mod:`trenv.airlock.preview` has already escaped (the one place it is marked safe); PNG
figures are shown from the raw-file route to the checkers reviewing the request and from
the server-rendered preview route to everyone else (:mod:`trenv.web.airlock.files`), never
inlined from the client's description.

Who is looking decides how much: the checkers reviewing the request (``full``, exactly
:func:`trenv.airlock.permissions.may_read_file_bytes`) see up to :data:`MAX_ROWS` rows of a
table and every text, notebook and figure as it is. Everyone else who may see the request
(the requester, the project's members, checkers once it is decided) has a browser outside the
TRE, and sees no more than the project's output limits let one output show
(:func:`preview_limits`, the policy's ``egress.output_max_*``): the first
``max_table_rows`` rows of a table with a note, text and notebooks judged as
:mod:`trenv.airlock.preview` describes. The file itself leaves only in a released bundle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from trenv.airlock import preview
from trenv.airlock.checks import FileCheck
from trenv.airlock.intake import FrozenFile, file_type
from trenv.airlock.queries import frozen_bytes
from trenv.config import Settings
from trenv.disclosure.policy import load_policy
from trenv.errors import TrenvError
from trenv.judge.text import TextLimits
from trenv.store.models import RequestFile

MAX_ROWS = 300
# Raw bytes are served, to reviewing checkers only, for these: PNG inline (it is shown as
# <img>), PDF as a download.
INLINE_TYPES = frozenset({"image/png"})
CHECKER_DOWNLOAD_TYPES = frozenset({"application/pdf"})


@dataclass(frozen=True)
class Cell:
    value: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    header: list[list[str]]
    rows: list[list[Cell]]
    total_rows: int
    truncated: bool
    flagged: int


@dataclass(frozen=True)
class Preview:
    kind: str  # "table" | "image" | "pdf" | "html" | "none"
    table: Table | None = None
    html: Markup | None = None
    note: str = ""
    extra: list[str] = field(default_factory=list)


def preview_limits(policy: str) -> TextLimits:
    """What one output may show under the policy ``policy`` (its ``egress`` section): the
    limits of a preview for a viewer who may not read the file."""
    egress = load_policy(policy).egress
    return TextLimits(
        max_chars=egress.output_max_chars,
        max_blob_chars=egress.output_max_blob_chars,
        max_table_rows=egress.output_max_table_rows,
        max_pseudonyms=egress.output_max_pseudonyms,
    )


def frozen_file(settings: Settings, row: RequestFile) -> FrozenFile:
    data = frozen_bytes(settings, row.sha256)  # re-verifies the sha256
    # The preview's kind comes from the path: a DP output's check kind is not a file kind.
    kind = file_type(row.path).kind
    return FrozenFile(row.path, data, row.sha256, row.size, row.media_type, kind)


def _table(frozen: FrozenFile, check: FileCheck, *, full: bool, limits: TextLimits) -> Preview:
    max_rows = MAX_ROWS if full else min(MAX_ROWS, limits.max_table_rows)
    shown = preview.table_preview(frozen, check, max_rows=max_rows)
    note = ""
    if not full:
        cut = preview.judge_table(shown, limits)
        if cut is not None:
            return Preview(
                "none", note=f"The table is not shown here: {cut.reason} {preview.CHECKERS_SEE}"
            )
        if shown.truncated:
            note = (
                f"Showing {len(shown.rows):,} of {shown.total_rows:,} rows. The checkers "
                "reviewing the request see the file; it leaves the TRE only in a released "
                "bundle."
            )
    rows = [
        [Cell(value, tuple(shown.flags.get((i, j), ()))) for j, value in enumerate(row)]
        for i, row in enumerate(shown.rows)
    ]
    table = Table(
        header=shown.header,
        rows=rows,
        total_rows=shown.total_rows,
        truncated=shown.truncated,
        flagged=len(shown.flags),
    )
    return Preview("table", table=table, note=note)


def build_preview(
    settings: Settings,
    row: RequestFile,
    check: FileCheck,
    *,
    full: bool,
    limits: TextLimits,
) -> Preview:
    """What the page shows of one frozen file (a note instead if it cannot be shown).

    ``full``: the viewer may read the file's bytes (a checker reviewing the request); else
    the preview shows no more than ``limits`` (the project's output limits) let out."""
    judged = None if full else limits
    try:
        frozen = frozen_file(settings, row)
        if frozen.kind in ("table", "spreadsheet"):
            return _table(frozen, check, full=full, limits=limits)
        if frozen.media_type in INLINE_TYPES:
            return Preview("image")
        if frozen.media_type in CHECKER_DOWNLOAD_TYPES:
            return Preview("pdf", note="PDF files are not rendered in the page.")
        if frozen.kind == "notebook":
            return Preview("html", html=Markup(preview.notebook_html(frozen.data, limits=judged)))
        if frozen.kind in ("text", "document"):
            rendered = preview.text_html(
                frozen.data, markdown=frozen.kind == "document", limits=judged
            )
            return Preview("html", html=Markup(rendered))
    except TrenvError as exc:
        return Preview("none", note=exc.problem)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        # Untrusted bytes that passed intake but trip a renderer: say so, never crash the page.
        return Preview("none", note=f"No preview: {type(exc).__name__}.")
    return Preview("none", note="No preview for this kind of file.")
