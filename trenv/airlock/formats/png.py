"""PNG figures: refused at intake unless well-formed, frozen as a fresh encoding of their
pixels, and reported on for what that re-encoding removed and whether the pixels look like
packed bytes (:mod:`trenv.judge.image`).

Text, Exif, profile, animation and private chunks can hold any bytes and are invisible in a
viewer, so none of them is frozen, shown or released. A PNG saved by ``tre.save`` is matched
against its output record like a table; any other PNG can show anything, so a checker must
look at it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from trenv.airlock.checks.figures import unchecked_figure
from trenv.airlock.checks.models import FileCheck, Finding, finding, summarise
from trenv.airlock.checks.saved import check_saved
from trenv.errors import Invalid
from trenv.judge.image import (
    DEFAULT_MAX_PIXELS,
    TEXT_CHUNKS,
    Chunk,
    ImageRefused,
    ImageTooLarge,
    ReencodedImage,
    packed_bytes_score,
    png_chunk_list,
    reencode_png,
)

if TYPE_CHECKING:
    from trenv.airlock.intake import FrozenFile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# matplotlib writes these small metadata keys; anything else in a text chunk is unexplained,
# and so is a known key with a value longer than metadata ever is.
_KNOWN_KEYS = frozenset({"Software", "Creation Time", "Title", "Author", "Description"})
_KNOWN_MAX_BYTES = 1024
# Unexplained text this large is a payload, not a forgotten caption.
METADATA_FAIL_BYTES = 4096


# --- intake ----------------------------------------------------------------------------------


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, payload) of each chunk of a PNG, checking lengths and CRCs; ``ValueError`` if
    the structure is broken."""
    if not data.startswith(PNG_MAGIC):
        raise ValueError("no PNG signature")
    pos = len(PNG_MAGIC)
    while True:
        if pos + 12 > len(data):
            raise ValueError("truncated chunk")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 8 + length
        if end + 4 > len(data):
            raise ValueError("truncated chunk")
        payload = data[pos + 8 : end]
        (crc,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(ctype + payload) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in chunk {ctype!r}")
        yield ctype, payload
        pos = end + 4
        if ctype == b"IEND":
            if pos != len(data):
                raise ValueError("data after the end of the image")
            return


def validate(path: str, data: bytes) -> None:
    if not data.startswith(PNG_MAGIC):
        raise Invalid(
            f"{path} is named .png but its content is not a PNG image.",
            "save the figure as PNG (fig.savefig('name.png')) or use the right extension",
        )
    try:
        types = [t for t, _ in png_chunks(data)]
    except ValueError as exc:
        # Bytes after IEND are invisible in every viewer: a classic way to smuggle data.
        raise Invalid(
            f"{path} is not a well-formed PNG image ({exc}).",
            "save the figure again with savefig and export that file",
        ) from None
    if not types or types[0] != b"IHDR":
        raise Invalid(f"{path} is not a well-formed PNG image.", "save the figure again")


def reencode(path: str, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ReencodedImage:
    """A fresh PNG of the image's pixels, which is what intake freezes. Refused
    (:class:`Invalid`) if the pixels cannot be decoded or would be a decompression bomb."""
    try:
        return reencode_png(data, max_pixels)
    except ImageTooLarge as exc:
        raise Invalid(
            f"{path} is {exc.width} x {exc.height} pixels, more than the limit of "
            f"{exc.limit:,} pixels (a decompression bomb, or a figure saved at a very high "
            "resolution).",
            "save the figure at a lower resolution, e.g. fig.savefig(path, dpi=150)",
        ) from None
    except ImageRefused as exc:
        raise Invalid(
            f"{path} cannot be decoded as an image: {exc}.",
            "save the figure again with savefig and export that file",
        ) from None


# --- checks ----------------------------------------------------------------------------------


def check(frozen: FrozenFile, *, policy: str, record: bytes | None) -> FileCheck:
    if record is not None:
        findings, _ = check_saved(frozen, record, policy)
        return summarise("figure", [*findings, *image_findings(frozen)], header_rows=0)
    return summarise("figure", [unchecked_figure(), *image_findings(frozen)], header_rows=0)


def image_findings(frozen: FrozenFile) -> list[Finding]:
    """What the PNG's re-encoding removed, and whether its pixels are packed bytes."""
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
