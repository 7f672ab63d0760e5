"""The egress meter for what the airlock's pages show people outside the review.

A request page's previews and a figure's ``preview.png`` reach a browser outside the TRE, just
as kernel output does, so for everyone but the checkers reviewing the request they count on
the same meter (:func:`trenv.meter.ledger.spend`): text per hour with the notebook server's
output, figures as images. Judging each file (:mod:`trenv.web.airlock.preview`) bounds one
page; the meter bounds how many pages (drafts of many files, reloads) an hour can show. Past
the hard level the previews are withheld with the reason, and the page itself still works.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy.orm import Session

from trenv.errors import TooMany
from trenv.meter import ledger
from trenv.meter.wire import KindState, MeterKind
from trenv.web.airlock.preview import Preview

# Coarse figure previews inlined in a notebook's preview count as images, not text.
_DATA_URI = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+")


def shown_sizes(preview: Preview) -> tuple[int, int]:
    """Bytes of text and of images that ``preview`` puts in the page."""
    text = len(preview.note.encode()) + sum(len(e.encode()) for e in preview.extra)
    image = 0
    if preview.html is not None:
        html = str(preview.html)
        image = sum(len(m.group()) for m in _DATA_URI.finditer(html))
        text += len(html.encode()) - image
    if preview.table is not None:
        table = preview.table
        cells = [v for row in table.header for v in row]
        cells += [c.value for row in table.rows for c in row]
        text += sum(len(v.encode()) + 1 for v in cells)
    return text, image


def withheld_message(kind: MeterKind, state: KindState) -> str:
    what = "text" if kind == "text" else "images"
    return (
        f"Previews are withheld for this hour: this hour you were shown "
        f"{state.used // 1024:,} KB of {what} (notebook output, files and these pages "
        f"together), and this project's limit is {state.hard // 1024:,} KB per hour. An "
        f"audit event records this. Previews return at {state.resets_at:%H:%M} UTC; the "
        "checkers reviewing the request see its files."
    )


def meter_previews(
    session: Session, *, username: str, project: str, previews: Mapping[int, Preview]
) -> dict[int, Preview]:
    """The previews a viewer outside the review may be shown this hour: all of them, counted,
    or (past the hard level of either kind) none, each replaced by the reason."""
    text = image = 0
    for preview in previews.values():
        t, i = shown_sizes(preview)
        text, image = text + t, image + i
    # One savepoint for both kinds: a page refused for its images counts no text either.
    with session.begin_nested() as savepoint:
        for kind, nbytes in (("text", text), ("image", image)):
            allowed, state = ledger.spend(
                session, username=username, project=project, kind=kind, nbytes=nbytes
            )
            if not allowed:
                savepoint.rollback()
                note = withheld_message(kind, state)
                return {fid: Preview("none", note=note) for fid in previews}
    return dict(previews)


def meter_figure(session: Session, *, username: str, project: str, nbytes: int) -> None:
    """Count a figure preview sent to a viewer outside the review; 429 past the hour's level."""
    allowed, state = ledger.spend(
        session, username=username, project=project, kind="image", nbytes=nbytes
    )
    if not allowed:
        raise TooMany(withheld_message("image", state))
